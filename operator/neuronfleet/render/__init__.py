"""Pure rendering of a ModelDeployment and its plan into the child objects the operator applies.

One module per child kind (`deployment`, `service`, `pdb`, `monitor`), each with
`expected(md, plan, ...) -> dict`; names and labels live in `names` and `labels`, operator-level
defaults in `options`, and `children` assembles the set in apply order. Nothing here does I/O or
reads the clock, so `neuronfleet render` and the controller produce byte-identical objects.
"""
