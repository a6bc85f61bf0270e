"""neuronfleet.sim."""
