"""neuronfleet: a Kubernetes operator for vLLM inference fleets on AWS Trainium and Inferentia."""

__version__ = "0.1.0"
__all__ = ["__version__"]
