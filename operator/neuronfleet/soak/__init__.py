"""The chaos soak: the demo's whole stack under a seeded storm of faults, with invariants checked throughout.

- ``invariants``: the promises (replicas in bounds, no scale-down on missing data, one operator acting,
  convergence after faults, ...) as pure checkers over plain timelines;
- ``schedule``: the seeded fault schedule, pure;
- ``report``: the figures, a markdown page and the PNG;
- ``runner``: the imperative shell (the stack, two peered operators, the faults, the sampling).

Run it with ``python bench/soak.py --duration 1800``.
"""

__all__: list[str] = []
