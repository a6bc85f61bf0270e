-- Argo CD health check for neuronfleet.io/ModelDeployment.
-- Install it under resource.customizations.health.neuronfleet.io_ModelDeployment in argocd-cm
-- (see docs/argocd.md). Argo CD runs custom checks without the string and math libraries, so
-- this script uses only the base library, table access and the .. operator.
--
--   Degraded     Degraded=True (the spec cannot be served, or a child cannot be applied, e.g. a
--                multi-node fleet on a cluster without the LeaderWorkerSet CRD), with the
--                condition's message; running replicas are left as they were.
--   Progressing  the operator has not yet observed the current generation, a rollout or a
--                scale is under way (Progressing=True), or replicas are not ready yet.
--   Healthy      Ready=True, computed for the current generation.
--   Unknown      the operator reported a status this script cannot read.
local hs = {}

local function condition(conditions, kind)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function replicas(status)
  local ready = status.readyReplicas or 0
  local desired = status.desiredReplicas or status.replicas or 0
  local text = ready .. "/" .. desired .. " replicas ready"
  -- A replica spanning nodes is one LeaderWorkerSet group; the counts are groups.
  if status.plan ~= nil and status.plan.nodesPerReplica ~= nil and status.plan.nodesPerReplica > 1 then
    text = text .. " (groups of " .. status.plan.nodesPerReplica .. " nodes)"
  end
  return text
end

local function current(c, generation)
  return c.observedGeneration == nil or generation == nil or c.observedGeneration >= generation
end

local status = obj.status
local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the neuronfleet operator to report status"
  return hs
end

local degraded = condition(status.conditions, "Degraded")
if degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "Degraded") .. ": " .. (degraded.message or "")
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local ready = condition(status.conditions, "Ready")
local progressing = condition(status.conditions, "Progressing")

if progressing ~= nil and progressing.status == "True" and current(progressing, generation) then
  hs.status = "Progressing"
  hs.message = (progressing.reason or "Progressing") .. ": " .. (progressing.message or replicas(status))
  return hs
end

if ready == nil or ready.status == "Unknown" then
  hs.status = "Unknown"
  hs.message = "No Ready condition to judge by (" .. replicas(status) .. ")"
  return hs
end

if ready.status == "True" and current(ready, generation) then
  hs.status = "Healthy"
  hs.message = ready.message or replicas(status)
  return hs
end

hs.status = "Progressing"
hs.message = (ready.reason or "NotReady") .. ": " .. (ready.message or replicas(status))
return hs
