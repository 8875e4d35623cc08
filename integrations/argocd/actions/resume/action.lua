-- Argo CD action "resume" on a nonstop.dev/Rollout. A rollout can be held two ways, and
-- resume releases both:
-- - held by a RolloutAction pause (status.held): creates a RolloutAction resume, as
--   `kubectl nonstop resume` does (needs Argo CD 2.8 or later: actions that create resources);
-- - spec.paused: true: sets it to false, as Argo CD's own Deployment resume does. If Git says
--   paused: true, the Application is then OutOfSync (and self-heal pauses it again): change
--   it in Git instead.
-- When neither holds it, a RolloutAction resume is still created: nonstop rejects it and
-- says why (Event ActionRejected on the Rollout).
local result = {}
local held = obj.status ~= nil and obj.status.held == true
local paused = obj.spec ~= nil and obj.spec.paused == true
if held or not paused then
  local ra = {
    apiVersion = "nonstop.dev/v1alpha1",
    kind = "RolloutAction",
    metadata = {
      generateName = obj.metadata.name .. "-resume-",
      namespace = obj.metadata.namespace,
      labels = {["nonstop.dev/rollout"] = obj.metadata.name},
      ownerReferences = {{
        apiVersion = obj.apiVersion,
        kind = obj.kind,
        name = obj.metadata.name,
        uid = obj.metadata.uid,
        controller = false,
        blockOwnerDeletion = false,
      }},
    },
    spec = {rollout = obj.metadata.name, action = "resume", reason = "requested in Argo CD"},
  }
  result[#result + 1] = {operation = "create", resource = ra}
end
if paused then
  obj.spec.paused = false
  result[#result + 1] = {operation = "patch", resource = obj}
end
return result
