"""Sub-commands of the `neuronfleet` CLI, one module each (see neuronfleet.cli)."""
