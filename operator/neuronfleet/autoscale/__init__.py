"""neuronfleet.autoscale: deciding the replica count of a vLLM fleet from its Prometheus signals.

Functional core: `types` (plain data), `decide` (the pure decision), `history` (the only state kept
between decisions), `defaults` (HPA's behaviour and neuronfleet's slower Neuron scale-down), `promql`
(queries from a ModelDeployment's identity). Imperative shell: `prometheus` (async HTTP client) and
`observe` (signals -> Observation). Import the modules, e.g. `from neuronfleet.autoscale import decide`.
"""

__all__: list[str] = []
