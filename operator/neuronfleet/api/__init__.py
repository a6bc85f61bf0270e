"""neuronfleet.api."""
