"""neuronfleet.autoscale."""
