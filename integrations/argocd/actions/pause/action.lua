-- Argo CD action "pause" on a nonstop.dev/Rollout: creates a RolloutAction (spec.action
-- pause), as `kubectl nonstop pause` does. nonstop applies it once and answers it in its
-- status and with an Event on the Rollout (ActionApplied, or ActionRejected with why).
-- Needs Argo CD 2.8 or later (actions that create resources); see docs/argocd.md.
local ra = {
  apiVersion = "nonstop.dev/v1alpha1",
  kind = "RolloutAction",
  metadata = {
    generateName = obj.metadata.name .. "-pause-",
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
  spec = {rollout = obj.metadata.name, action = "pause", reason = "requested in Argo CD"},
}
return {{operation = "create", resource = ra}}
