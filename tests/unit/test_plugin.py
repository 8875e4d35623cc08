"""The kubectl plugin's command line without a cluster: kubectl's options before or after
the subcommand, exit codes, errors on one line, RolloutActions and their answers, set image
and restart, output formats, completion. (e2e/test_plugin.py runs it against a cluster.)"""

from __future__ import annotations

import copy
import importlib.machinery
import importlib.util
import json
import sys
import types
from datetime import UTC, datetime
from typing import Any, cast

import click
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

import nonstop.cli.plugin.connect as connect_module
from nonstop.cli.plugin import act, action_body, main
from nonstop.cli.plugin.actions import parse_images, with_images, with_restart
from nonstop.cli.plugin.completion import completions
from nonstop.cli.plugin.connect import Connection, Target
from nonstop.cli.plugin.errors import PluginError
from nonstop.cli.plugin.group import OFFLINE, Commands, cli
from nonstop.kube.client import Kube

WEB: dict[str, Any] = {
    "apiVersion": "nonstop.dev/v1alpha1",
    "kind": "Rollout",
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "0b1c-uid",
        "generation": 3,
        "managedFields": [{"manager": "kubectl"}],
    },
    "spec": {
        "replicas": 2,
        "strategy": {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {"team": "shop"}},
            "spec": {
                "initContainers": [{"name": "init", "image": "busybox:1"}],
                "containers": [
                    {"name": "app", "image": "web:1"},
                    {"name": "proxy", "image": "envoy:1"},
                ],
            },
        },
    },
    "status": {"phase": "Paused", "strategy": "canary", "currentStepIndex": 1},
}


class FakeKube:
    """What the plugin's commands call, over a dict of Rollouts; records every write."""

    def __init__(
        self, rollout: dict[str, Any] | None = WEB, answer: dict[str, Any] | None = None
    ) -> None:
        self.rollout = copy.deepcopy(rollout)
        self.answer = answer if answer is not None else {"phase": "Applied", "message": "ok"}
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.patched: list[tuple[dict[str, Any], int]] = []
        self.paths: list[str] = []
        self.conflicts = 0  # set_rollout_template fails this often (the spec moved on)
        self.refuse: ApiException | None = None

    def get_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.refuse is not None:
            raise self.refuse
        return copy.deepcopy(self.rollout) if self.rollout and name == "web" else None

    def create_action(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append((namespace, body))
        return {**body, "metadata": {**body["metadata"], "name": "web-abort-x7k2p"}}

    def get_action(self, namespace: str, name: str) -> dict[str, Any]:
        return {"status": self.answer}

    def list_deployments(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return []

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return []

    def list_actions(self, namespace: str, rollout: str | None = None) -> list[dict[str, Any]]:
        return []

    def request_json(
        self, method: str, path: str, *, query: dict[str, str] | None = None
    ) -> dict[str, Any] | None:
        self.paths.append(path)
        if path.endswith("/events"):
            return {"items": []}
        other = copy.deepcopy(WEB)
        other["metadata"].update(name="api", namespace="blue")
        return {"items": [copy.deepcopy(self.rollout), other]}

    def set_rollout_template(
        self, namespace: str, name: str, template: dict[str, Any], generation: int
    ) -> None:
        assert self.rollout is not None
        if self.conflicts:
            self.conflicts -= 1
            self.rollout["metadata"]["generation"] += 1  # someone else wrote the spec
            raise ApiException(status=422, reason="Unprocessable Entity")
        assert generation == self.rollout["metadata"]["generation"]
        self.patched.append((template, generation))
        self.rollout["spec"]["template"] = template


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    """The plugin connected to a FakeKube; `kube.targets` are the options it was given."""
    fake = FakeKube()
    targets: list[Target] = []

    def connect(target: Target) -> Connection:
        targets.append(copy.copy(target))
        namespace = target.namespace or "from-context"
        return Connection(cast(Kube, fake), namespace, "https://fake:6443", target.context, "me")

    monkeypatch.setattr(connect_module, "connect", connect)
    fake.targets = targets  # type: ignore[attr-defined]
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- kubectl's options ----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "shop", "get", "web"],
        ["get", "web", "-n", "shop"],
        ["get", "-n", "shop", "web"],
        ["--namespace", "elsewhere", "get", "web", "--namespace=shop"],  # the later wins
        ["--context", "prod", "-n", "shop", "status", "web"],
        ["get", "web", "--context", "prod", "-n", "shop", "--kubeconfig", "/tmp/k"],
    ],
)
def test_cluster_options_before_or_after_the_subcommand(
    kube: FakeKube, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "Rollout web (namespace shop)" in out
    [target] = kube.targets  # type: ignore[attr-defined]
    assert target.namespace == "shop"
    if "--context" in argv:
        assert target.context == "prod"
    if "--kubeconfig" in argv:
        assert target.kubeconfig == "/tmp/k"


def test_without_n_the_contexts_namespace(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "abort", "nothere")
    assert code == 1 and err == "error: Rollout nothere not found in namespace from-context\n"


def test_all_namespaces_lists_everywhere_and_only_where_it_fits(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "list", "-A")
    assert code == 0 and kube.paths == ["/apis/nonstop.dev/v1alpha1/rollouts"]
    header, *rows = [line.split() for line in out.strip().splitlines()]
    assert header[:2] == ["NAMESPACE", "NAME"] and [r[:2] for r in rows] == [
        ["blue", "api"],
        ["shop", "web"],
    ]
    assert run(capsys, "-A", "get")[0] == 0  # `get` without NAME is the list
    assert kube.paths[-1] == "/apis/nonstop.dev/v1alpha1/rollouts"
    code, _, err = run(capsys, "get", "web", "-A")
    assert code == 2 and "drop -A or NAME" in err
    code, _, err = run(capsys, "-A", "promote", "web")
    assert code == 2 and "-A/--all-namespaces is for get and list" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["frob"], "No such command 'frob'"),
        (["get", "web", "extra"], "unexpected extra argument"),
        (["abort"], "Missing argument 'NAME'"),
        (["get", "web", "-o", "table"], "'table' is not one of 'json', 'yaml'"),
        (["set", "image", "web", "app"], "expected CONTAINER=IMAGE"),
        (["promote", "web", "--timeout", "-1"], "--timeout"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and says in err and "Traceback" not in err


def test_no_kubeconfig_is_exit_3_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, out, err = run(capsys, "list")
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: cannot reach the cluster: no kubeconfig")
    code, _, err = run(capsys, "get", "web", "--kubeconfig", str(tmp_path / "nope"))
    assert (
        code == 3 and err == f"error: cannot reach the cluster: no kubeconfig at {tmp_path}/nope\n"
    )


def test_an_unknown_context_is_exit_3_naming_the_contexts(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "dev",
            }
        )
    )
    code, _, err = run(capsys, "--kubeconfig", str(kubeconfig), "--context", "prod", "list")
    assert code == 3 and "context prod is not in" in err and "(contexts: dev)" in err


def test_a_refusal_outside_a_known_request_is_still_one_line(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.refuse = ApiException(status=403, reason="Forbidden")
    kube.refuse.body = json.dumps(
        {
            "message": 'rollouts.nonstop.dev "web" is forbidden: User "bob" cannot get resource'
            ' "rollouts" in API group "nonstop.dev" in the namespace "shop"'
        }
    )
    code, _, err = run(capsys, "get", "web", "-n", "shop")
    assert code == 1
    assert err == "error: forbidden: cannot get rollouts.nonstop.dev in namespace shop (as bob)\n"


# --- get ---------------------------------------------------------------------------------


def test_get_prints_the_object_as_json_or_yaml_without_managed_fields(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "get", "web", "-o", "json")
    printed = json.loads(out)
    assert (
        code == 0 and printed["spec"] == WEB["spec"] and "managedFields" not in printed["metadata"]
    )
    code, out, _ = run(capsys, "list", "-o", "yaml")
    listed = yaml.safe_load(out)
    assert listed["kind"] == "List" and [i["metadata"]["name"] for i in listed["items"]] == [
        "web",
        "api",
    ]


# --- actions -----------------------------------------------------------------------------


def test_an_action_is_owned_by_its_rollout_and_labelled_with_its_name() -> None:
    body = action_body(WEB, "promote-full", "looks good")
    assert body["apiVersion"] == "nonstop.dev/v1alpha1" and body["kind"] == "RolloutAction"
    assert body["metadata"]["generateName"] == "web-promote-full-"
    assert body["metadata"]["labels"] == {"nonstop.dev/rollout": "web"}
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "nonstop.dev/v1alpha1",
            "kind": "Rollout",
            "name": "web",
            "uid": "0b1c-uid",
            "controller": False,
            "blockOwnerDeletion": False,
        }
    ]
    assert body["spec"] == {"rollout": "web", "action": "promoteFull", "reason": "looks good"}
    assert "reason" not in action_body(WEB, "abort", None)["spec"]


@pytest.mark.parametrize(
    ("answer", "code", "shown"),
    [
        ({"phase": "Applied", "message": "abort by RolloutAction x"}, 0, "Applied"),
        ({"phase": "Rejected", "message": "nothing to abort"}, 1, "Rejected: nothing to abort"),
    ],
)
def test_an_action_waits_for_the_answer(
    kube: FakeKube,
    capsys: pytest.CaptureFixture[str],
    answer: dict[str, str],
    code: int,
    shown: str,
) -> None:
    kube.answer = answer
    got, out, _ = run(capsys, "abort", "web", "-n", "shop", "--reason", "latency")
    assert got == code and f"rolloutaction/web-abort-x7k2p {shown}" in out
    [(namespace, body)] = kube.created
    assert namespace == "shop" and body["spec"]["reason"] == "latency"
    assert body["metadata"]["ownerReferences"][0]["uid"] == "0b1c-uid"


def test_no_answer_in_time_is_exit_4(kube: FakeKube, capsys: pytest.CaptureFixture[str]) -> None:
    kube.answer = {}
    code, _, err = run(capsys, "promote", "web", "--timeout", "0")
    assert code == 4
    assert err.startswith("error: rolloutaction/web-abort-x7k2p created; nonstop has not answered")


def test_ctrl_c_while_waiting_says_the_action_stands() -> None:
    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    kube = FakeKube(answer={})
    code = act(cast(Kube, kube), "shop", "web", "pause", None, timeout=5, sleep=interrupt)
    assert code == 130 and len(kube.created) == 1


def test_an_action_on_a_missing_rollout_creates_nothing() -> None:
    kube = FakeKube(None)
    with pytest.raises(PluginError, match="Rollout web not found in namespace shop"):
        act(cast(Kube, kube), "shop", "web", "abort", None, timeout=1)
    assert kube.created == []


# --- set image, restart --------------------------------------------------------------------


def test_image_arguments_as_kubectl_set_image() -> None:
    assert parse_images(["app=web:2", "*=all:3"]) == {"app": "web:2", "*": "all:3"}
    for bad in ("app", "=web:2", "app=", "app= web:2"):
        with pytest.raises(click.BadParameter):
            parse_images([bad])
    template = WEB["spec"]["template"]
    changed = with_images(template, {"app": "web:2", "init": "busybox:2"})
    images = {c["name"]: c["image"] for c in changed["spec"]["containers"]}
    assert images == {"app": "web:2", "proxy": "envoy:1"}
    assert changed["spec"]["initContainers"][0]["image"] == "busybox:2"
    assert template["spec"]["containers"][0]["image"] == "web:1"  # the input is untouched
    every = with_images(template, {"*": "x:9"})
    assert {c["image"] for c in every["spec"]["containers"]} == {"x:9"}
    with pytest.raises(
        PluginError, match=r"no container named db .*\(containers: app, proxy, init\)"
    ):
        with_images(template, {"db": "pg:16"})


def test_set_image_writes_the_template_only_if_the_spec_did_not_move(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    kube.conflicts = 1  # someone changed the spec between the read and the write
    code, out, _ = run(capsys, "set", "image", "web", "proxy=envoy:2", "-n", "shop")
    assert code == 0 and out == "rollout.nonstop.dev/web image updated\n"
    [(template, generation)] = kube.patched
    assert generation == 4  # read again after the conflict
    assert [c["image"] for c in template["spec"]["containers"]] == ["web:1", "envoy:2"]
    code, out, _ = run(capsys, "-n", "shop", "set", "image", "web", "proxy=envoy:2")
    assert code == 0 and out.endswith("image unchanged\n") and len(kube.patched) == 1


def test_restart_adds_kubectls_restarted_at_and_keeps_the_rest(
    kube: FakeKube, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    changed = with_restart(WEB["spec"]["template"], at)
    assert changed["metadata"]["annotations"] == {
        "team": "shop",
        "kubectl.kubernetes.io/restartedAt": "2026-03-01T12:00:05Z",
    }
    assert changed["spec"] == WEB["spec"]["template"]["spec"]
    code, out, _ = run(capsys, "restart", "web")
    assert code == 0 and out == "rollout.nonstop.dev/web restarted\n"
    [(template, _)] = kube.patched
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]


# --- completion and offline commands -----------------------------------------------------


def test_completion_for_kubectl_lists_commands_options_and_rollouts(kube: FakeKube) -> None:
    lines = completions(["pro"])
    assert lines[-1] == ":4"  # no file names
    assert [line.split("\t")[0] for line in lines[:-1]] == ["promote", "promote-full"]
    assert "--namespace" in [line.split("\t")[0] for line in completions(["get", "--n"])]
    assert completions(["-n", "shop", "get", "w"]) == ["web\tPaused", ":4"]
    assert completions(["get", "--kubeconfig", ""]) == [":0"]  # the shell completes files


def test_the_completion_script_is_for_the_executable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "completion", "bash")
    assert code == 0 and "_KUBECTL_NONSTOP_COMPLETE" in out and "kubectl-nonstop" in out


def test_offline_commands_are_listed_when_their_module_exists_and_loaded_on_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = types.ModuleType("nonstop.cli.offline_example")
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    module.command = click.Command("example", callback=lambda: click.echo("ran"))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    group = Commands(lazy={"example": module.__name__, "missing": "nonstop.cli.no_such_module"})
    group.add_command(click.Command("get"))
    ctx = click.Context(group)
    assert group.list_commands(ctx) == ["get", "example"]
    assert group.get_command(ctx, "missing") is None
    assert group.get_command(ctx, "example") is module.command  # type: ignore[attr-defined]
    # the real group lists the offline commands whose modules are there
    real = cli.list_commands(click.Context(cli))
    for name, found in OFFLINE.items():
        assert (name in real) == (importlib.util.find_spec(found) is not None)
