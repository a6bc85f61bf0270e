"""Fleet simulator: replays an LLM request trace against a simulated vLLM fleet on Neuron.

It exists to measure autoscaling policies the way the reference evaluation method asks
(SLO attainment against NeuronCore-hours, relative to a startup-aware oracle), without a
cluster and without Neuron hardware. Entry point: `neuronfleet.sim.fleet.simulate`.
"""

__all__: list[str] = []
