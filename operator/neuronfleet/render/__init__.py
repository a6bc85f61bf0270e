"""neuronfleet.render."""
