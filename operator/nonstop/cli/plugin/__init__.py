"""kubectl-nonstop: the kubectl plugin (docs/plugin.md).

`kubectl nonstop get NAME --watch` shows a Rollout live: its step, the traffic weights, its
revisions with their pods, analysis runs, the latest RolloutActions and Events.
`kubectl nonstop list` lists Rollouts; `abort`, `retry`, `pause`, `resume`, `promote`,
`promote-full` and `undo` create a RolloutAction and wait for nonstop's answer;
`set image` and `restart` change the pod template.

Installed as the `kubectl-nonstop` command, so kubectl finds it on PATH as `kubectl nonstop`
(and `kubectl_complete-nonstop`, which kubectl asks for completions).

Modules: group (the command line, options, exit codes), errors (messages and exit codes),
connect (kubeconfig, context, namespace), view (the pages, pure), live (the watch),
actions (what the plugin changes), completion (kubectl's plugin completion).
"""

from nonstop.cli.plugin.actions import act, action_body
from nonstop.cli.plugin.group import cli, main

__all__ = ["act", "action_body", "cli", "main"]
