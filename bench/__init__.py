"""Benchmark harness for lc2-gateway: floor, gateway and ceiling under the same load.

``python bench/run.py --quick`` for a short run, ``python bench/run.py`` for the
full one; see ``bench/README.md``.
"""

__all__: list[str] = []
