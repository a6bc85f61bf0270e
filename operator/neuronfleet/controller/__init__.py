"""neuronfleet.controller."""
