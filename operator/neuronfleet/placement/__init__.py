"""Where a fleet's replicas can be placed: unschedulable replicas, fallback variants, capacity status.

Pure functions over the pods and plans the controller observed (no I/O, no clock): `replicas`
classifies each pod (ready, starting, waiting for a node, unschedulable with the scheduler's reason),
`fallback` decides how many replicas each variant's Deployment gets and what counts as capacity on
its way, `capacity_status` turns that into `status.capacity`, the CapacityAvailable condition, the
autoscaler's ScalingLimited wording and the events. The controller wires them (see the README's
Capacity section).
"""
