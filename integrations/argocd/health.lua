-- Argo CD health of a nonstop.dev/Rollout, read from the status nonstop writes
-- (status.phase, status.message and the kstatus conditions Ready, Reconciling, Stalled,
-- Paused). Every state and its reason: docs/argocd.md. Lua 5.1 (gopher-lua in Argo CD).
local hs = {status = "Progressing", message = "waiting for the controller: nonstop has not written a status yet"}

if obj.status == nil or obj.status.observedGeneration == nil then
  return hs
end
local st = obj.status
local generation = obj.metadata.generation
if generation ~= nil and st.observedGeneration < generation then
  hs.message = "waiting for the controller: generation " .. tostring(generation) ..
    " is not observed yet (the status is of generation " .. tostring(st.observedGeneration) .. ")"
  return hs
end

local conditions = {}
if st.conditions ~= nil then
  for _, c in ipairs(st.conditions) do
    conditions[c.type] = c
  end
end
local function on(type_)
  local c = conditions[type_]
  return c ~= nil and c.status == "True"
end
local function said(default)
  if st.message ~= nil and st.message ~= "" then
    return st.message
  end
  local ready = conditions["Ready"]
  if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
    return ready.message
  end
  return default
end

-- Aborted, rolling back or rolled back, or a spec nonstop cannot carry out (InvalidSpec,
-- ServiceConflict, DeploymentConflict, AnalysisTemplateNotFound, HTTPRoute*, FlagDocument*):
-- Stalled=True, phase Degraded. RollingBack is also Reconciling: Degraded all the same.
local aborted = st.abort ~= nil and st.abort.revision ~= nil and st.abort.revision == st.currentRevision
if on("Stalled") or st.phase == "Degraded" or aborted then
  hs.status = "Degraded"
  hs.message = said("the rollout is degraded")
  return hs
end

if on("Ready") then
  hs.status = "Healthy"
  hs.message = said("the rollout is complete")
  return hs
end

-- Paused=True: on purpose (a canary's pause step, blue-green awaiting promotion, a user's
-- pause by spec.paused or a RolloutAction, an inconclusive analysis) is Suspended; waiting
-- on pods that are not ready (PodsNotReady, phase Paused but still Reconciling) is not a
-- pause anyone asked for: Progressing, until the progress deadline makes it Degraded.
local paused = conditions["Paused"]
if on("Paused") and paused.reason ~= "PodsNotReady" then
  hs.status = "Suspended"
  hs.message = said("the rollout is paused")
  return hs
end

-- RolloutInProgress, Scaling, PodsNotReady, PostPromotionAnalysis, Shadowing, and
-- ApplyFailed (a write failed; nonstop retries with backoff, and the message says which).
if on("Reconciling") or st.phase == "Progressing" then
  hs.message = said("the rollout is progressing")
  return hs
end

-- A status without the conditions (or with a reason this script does not know): the phase.
if st.phase == "Healthy" then
  hs.status = "Healthy"
elseif st.phase == "Paused" then
  hs.status = "Suspended"
elseif st.phase == nil then
  hs.status = "Progressing"
else
  hs.status = "Unknown"
end
hs.message = said("phase " .. tostring(st.phase))
return hs
