"""neuronfleet.runtime."""
