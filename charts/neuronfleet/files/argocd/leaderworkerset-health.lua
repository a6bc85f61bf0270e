-- Argo CD health check for leaderworkerset.x-k8s.io/LeaderWorkerSet: the workload of a
-- neuronfleet ModelDeployment whose replicas span nodes (Argo CD ships no check for this kind).
-- Install it under resource.customizations.health.leaderworkerset.x-k8s.io_LeaderWorkerSet in
-- argocd-cm (see docs/argocd.md). Base library only: Argo CD runs it without string and math.
--
-- It reads what the LWS controller writes (kubernetes-sigs/lws): status.readyReplicas (groups
-- whose leader and workers are all ready), status.updatedReplicas (groups on the current
-- template) and the UpdateInProgress condition (reason GroupsUpdating). That controller does not
-- write status.observedGeneration, so no generation is compared.
--
--   Progressing  no status yet; a rolling update (UpdateInProgress=True); fewer ready or
--                updated groups than spec.replicas.
--   Healthy      every desired group ready and on the current template.
local hs = {}

local desired = 1
if obj.spec ~= nil and obj.spec.replicas ~= nil then
  desired = obj.spec.replicas
end

local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the LeaderWorkerSet controller to report status"
  return hs
end

local ready = status.readyReplicas or 0
local updated = status.updatedReplicas or 0
local counts = ready .. "/" .. desired .. " groups ready, " .. updated .. " updated"

if status.conditions ~= nil then
  for _, c in ipairs(status.conditions) do
    if c.type == "UpdateInProgress" and c.status == "True" then
      hs.status = "Progressing"
      hs.message = (c.reason or "UpdateInProgress") .. ": " .. counts
      return hs
    end
  end
end

if ready >= desired and updated >= desired then
  hs.status = "Healthy"
  hs.message = counts
  return hs
end

hs.status = "Progressing"
hs.message = "GroupsProgressing: " .. counts
return hs
