-- The actions Argo CD offers on a nonstop.dev/Rollout, each enabled only where nonstop would
-- apply it (the same rules as operator/nonstop/plan/control.py; nonstop still decides, and
-- rejects an action that no longer applies with an ActionRejected Event).
local st = obj.status or {}
local current = st.currentRevision
local stable = st.stableRevision
local aborted = st.abort ~= nil and current ~= nil and st.abort.revision == current
-- a rollout of the current revision is under way (a feature toggle's revision is stable
-- while its flag moves, so there the phase tells)
local in_steps = current ~= nil and ((stable ~= nil and stable ~= current) or
  (st.flag ~= nil and st.phase ~= "Healthy"))
local stepped = st.strategy == "canary" or st.strategy == "blueGreen" or
  st.strategy == "shadow" or st.strategy == "featureToggle"
local held = st.held == true
local paused = obj.spec ~= nil and obj.spec.paused == true
local promotable = stepped and in_steps and not aborted

local actions = {}
actions["promote"] = {
  disabled = not promotable,
  iconClass = "fa fa-fw fa-forward",
  displayName = "Promote (next step)",
}
actions["promote-full"] = {
  disabled = not promotable,
  iconClass = "fa fa-fw fa-fast-forward",
  displayName = "Promote Full",
}
actions["abort"] = {
  disabled = current == nil or aborted or (stable == current and not in_steps),
  iconClass = "fa fa-fw fa-circle-xmark",
  displayName = "Abort (roll back)",
}
actions["retry"] = {
  disabled = not aborted,
  iconClass = "fa fa-fw fa-rotate-right",
  displayName = "Retry",
}
actions["pause"] = {
  disabled = held,
  iconClass = "fa fa-fw fa-pause",
  displayName = "Pause",
}
actions["resume"] = {
  disabled = not (held or paused),
  iconClass = "fa fa-fw fa-play",
  displayName = "Resume",
}
return actions
