"""neuronfleet.neuron."""
