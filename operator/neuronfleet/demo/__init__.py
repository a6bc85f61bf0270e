"""`neuronfleet demo`: a whole Neuron fleet on 127.0.0.1, no cluster and no Neuron hardware needed.

The pieces, each in its own module:

- ``clock``: compressed time, so an hour of trace plays in minutes;
- ``replica``: a replica that looks like vLLM on Neuron from the outside (``/health``,
  ``/v1/completions``, ``/metrics`` with vLLM's names), timed by the simulator's engine model;
- ``nodepool``: the kubelet and Deployment controller stand-in that turns the operator's child
  Deployments into Pods and replicas, and keeps their status current;
- ``router``: the fleet's Service, a least-outstanding-requests proxy over the ready replicas;
- ``prometheus``: a real Prometheus (Debian binary) with file-based service discovery;
- ``load``: trace replay against the router;
- ``view``: the live terminal view, read through the official kubernetes client;
- ``report``: the summary and the plot at the end;
- ``realvllm``: ``--real-vllm``, one real vLLM server (CPU, tiny model) beside the simulated replicas;
- ``app``: wires it all up and tears it all down.
"""

__all__: list[str] = []
