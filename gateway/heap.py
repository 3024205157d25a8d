"""The garbage collector, set for a process that serves for months.

Start-up builds some 70,000 objects that live as long as the process: modules, the
config, compiled transforms, adapters, metrics.  Each full collection walked all of
them, about 40 ms with every call in flight held up, every few seconds under load.
Once the gateway serves they are frozen (``gc.freeze``): collections walk only what
came after.

Calls leave no reference cycles behind (their objects go by reference counting),
yet under load thousands of their objects are alive at once.  With Python's default
threshold (700 net allocations) the young generation was collected some 40 times a
second, each time walking every call in flight.  ``YOUNG`` is above the rise and fall
of what calls in flight hold, so a collection comes only when garbage that needs one
builds up (docs/performance.md, issue 21's fifth look).

Only the process entry points (``serve`` run as a program, each worker) settle the
heap; a process that embeds the gateway, a test run say, keeps its own settings.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG", "release_retired", "settle"]

YOUNG = 10_000  # net allocations of tracked objects between young-generation collections


def settle() -> None:
    """Freeze what exists now, as the gateway starts serving, and raise the young threshold."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)


def release_retired() -> None:
    """After a reload's old config is retired: a full collection takes what it left in
    cycles (frozen with the rest at start-up, it would otherwise never go), then
    freezes the rest again.  One pause of a full collection per reload."""
    if gc.get_freeze_count() == 0:
        return  # never settled: not this module's heap to manage
    gc.unfreeze()
    gc.collect()
    gc.freeze()
