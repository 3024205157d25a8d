"""Request ids: the shape of uuid4().hex, never repeated, not even across forked workers."""

from __future__ import annotations

import os
import re

from gateway.ids import new_request_id


def test_ids_are_32_hex_digits_and_distinct_across_buffer_refills() -> None:
    ids = [new_request_id() for _ in range(3 * 4096 // 16 + 7)]  # three refills and more
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_does_not_repeat_its_parents_ids() -> None:
    new_request_id()  # the parent's buffer holds bytes not yet handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave without running pytest's exit
        os.write(write, " ".join(new_request_id() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_request_id() for _ in range(8)}
    assert len(child) == 8
    assert not child & parent
