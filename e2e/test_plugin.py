"""kubectl nonstop against the real API server and the operator, as users run it: found by
kubectl on PATH, the live view read from a pseudo-terminal while a canary moves, every
command with its exit code, and the errors a new user meets (forbidden, no cluster)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from e2e.conftest import Cluster
from e2e.kube import eventually
from e2e.manifests import rollout

ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>78])")
ROLLOUT = "rollouts.nonstop.dev"  # never "rollout": Argo Rollouts' CRD may claim that name
STEPS: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]


def plugin(
    cluster: Cluster, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`kubectl nonstop ...`: kubectl finds kubectl-nonstop on PATH (cluster.env())."""
    return subprocess.run(
        [str(cluster.bin_dir / "kubectl"), "nonstop", *args],
        env={**cluster.env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def status(cluster: Cluster, ns: str) -> dict[str, Any]:
    return cluster.get(ROLLOUT, "web", "-n", ns).get("status", {})  # type: ignore[no-any-return]


def at_step(cluster: Cluster, ns: str, index: int) -> dict[str, Any]:
    def paused() -> dict[str, Any] | None:
        st = status(cluster, ns)
        return st if st.get("currentStepIndex") == index and st.get("phase") == "Paused" else None

    return eventually(paused, 120, f"paused at step index {index}", every=0.3)


class Screen:
    """A command in a pseudo-terminal (120x60), as a person at a terminal runs it; `text`
    is everything it drew, without the escape sequences."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the pty is its controlling terminal
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 120, 0, 0))
            os.execvpe(argv[0], argv, {**env, "TERM": "xterm-256color", "COLUMNS": "120"})
        self.raw = b""
        self.code: int | None = None

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode(errors="replace"))

    def read(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the child is gone
                    return
                if not chunk:
                    return
                self.raw += chunk

    def wait_for(self, *needles: str, since: int = 0, timeout: float = 60) -> str:
        """Read until every needle is on the screen after offset `since` of the text."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            later = self.text[since:]
            if all(n in later for n in needles):
                return later
            self.read(0.5)
        raise AssertionError(f"never drew {needles}; last screen:\n{self.text[-3000:]}")

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C as typed (the terminal turns it into SIGINT), then the exit code."""
        os.write(self.fd, b"\x03")
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.read(0.3)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.read(0.5)
                self.code = os.waitstatus_to_exitcode(status)
                return self.code
        raise AssertionError(f"still running {timeout}s after Ctrl-C:\n{self.text[-2000:]}")

    def close(self) -> None:
        if self.code is None:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        os.close(self.fd)


@contextlib.contextmanager
def screen(argv: list[str], env: dict[str, str]) -> Iterator[Screen]:
    shown = Screen(argv, env)
    try:
        yield shown
    finally:
        shown.close()


def test_the_live_view_follows_a_canary_and_ctrl_c_ends_it(
    cluster: Cluster, namespace: str
) -> None:
    manifest = rollout(replicas=4)
    manifest["spec"]["strategy"] = {"canary": {"steps": STEPS}}
    cluster.apply(manifest, namespace)
    eventually(lambda: status(cluster, namespace).get("phase") == "Healthy", 120, "Healthy")
    changed = plugin(cluster, "set", "image", "web", "app=registry.example/web:2", "-n", namespace)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == "rollout.nonstop.dev/web image updated\n"
    new = at_step(cluster, namespace, 1)["currentRevision"]

    kubectl = str(cluster.bin_dir / "kubectl")
    with screen(
        [kubectl, "nonstop", "get", "web", "-n", namespace, "--watch"], cluster.env()
    ) as live:
        first = live.wait_for("step 2 of 4", "canary 25%", f"revision {new}", "pods 1/1 ready")
        assert "phase Paused" in first and "pause (until promoted)" in first
        mark = len(live.text)
        promoted = plugin(cluster, "promote", "web", "-n", namespace)
        assert promoted.returncode == 0 and "Applied" in promoted.stdout, promoted.stderr
        # the watch brings the next step and its weight to the screen, without a keypress
        later = live.wait_for("step 4 of 4", "canary 50%", "pods 2/2 ready", since=mark)
        assert "ActionApplied" in later
        code = live.interrupt()
    assert code == 0, live.text[-2000:]
    assert "Traceback" not in live.text and "KeyboardInterrupt" not in live.text


def read_only_kubeconfig(cluster: Cluster, ns: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A kubeconfig with a context "viewer": a ServiceAccount that may read Rollouts of
    `ns` and nothing else."""
    cluster.kubectl("create", "serviceaccount", "viewer", "-n", ns)
    cluster.kubectl(
        "create", "role", "rollout-reader", "-n", ns,
        "--verb=get,list,watch", f"--resource={ROLLOUT}",
    )  # fmt: skip
    cluster.kubectl(
        "create", "rolebinding", "viewer", "-n", ns,
        "--role=rollout-reader", f"--serviceaccount={ns}:viewer",
    )  # fmt: skip
    token = cluster.kubectl("create", "token", "viewer", "-n", ns).stdout.strip()
    config: dict[str, Any] = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["users"].append({"name": "viewer", "user": {"token": token}})
    context = {"cluster": config["clusters"][0]["name"], "user": "viewer", "namespace": ns}
    config["contexts"].append({"name": "viewer", "context": context})
    viewer = tmp_path / "viewer.kubeconfig"
    viewer.write_text(yaml.safe_dump(config))
    return viewer, config


def test_list_get_restart_and_exit_codes(cluster: Cluster, namespace: str) -> None:
    ns = namespace
    cluster.apply(rollout(replicas=1), ns)
    eventually(lambda: status(cluster, ns).get("phase") == "Healthy", 120, "Healthy")
    first = status(cluster, ns)["currentRevision"]

    # options before and after the subcommand; status is get's old name
    listed = plugin(cluster, "-n", ns, "list")
    header, row = listed.stdout.splitlines()
    assert header.split()[:7] == ["NAME", "STRATEGY", "STEP", "WEIGHT", "READY", "PHASE", "AGE"]
    assert row.split()[:6] == ["web", "rolling", "1/1", "0", "1/1", "Healthy"]
    everywhere = plugin(cluster, "get", "-A")
    assert [ns, "web"] in [line.split()[:2] for line in everywhere.stdout.splitlines()]
    page = plugin(cluster, "status", "web", "-n", ns)
    assert page.returncode == 0 and "phase Healthy" in page.stdout
    assert f"revision {first}" in page.stdout and "pods 1/1 ready" in page.stdout
    as_json = json.loads(plugin(cluster, "get", "web", "-o", "json", "--namespace", ns).stdout)
    assert as_json["status"]["currentRevision"] == first

    # restart: a new revision of the same template, as kubectl rollout restart; a `list -w`
    # into a pipe follows it (a new table after a rule at each change), until SIGINT
    kubectl = str(cluster.bin_dir / "kubectl")
    watching = subprocess.Popen(
        [kubectl, "nonstop", "list", "-w", "-n", ns],
        env=cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert watching.stdout is not None
        ready, _, _ = select.select([watching.stdout], [], [], 60)
        assert ready, "list -w printed nothing in 60 s"
        table = [watching.stdout.readline(), watching.stdout.readline()]  # before the restart
        assert table[0].split()[0] == "NAME" and f"revision {first} is stable" in table[1]
        restarted = plugin(cluster, "restart", "web", "-n", ns)
        assert restarted.returncode == 0, restarted.stderr
        done = eventually(
            lambda: (
                (s := status(cluster, ns)).get("phase") == "Healthy"
                and s.get("currentRevision") != first
                and s
            ),
            120,
            "the restarted revision Healthy",
        )
        template = cluster.get(ROLLOUT, "web", "-n", ns)["spec"]["template"]
        assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
        assert template["spec"]["containers"][0]["image"] == "registry.example/web:1"
        assert done["stableRevision"] != first
        time.sleep(1.5)  # the last change reaches the table
        watching.send_signal(signal.SIGINT)
        tables, errors = watching.communicate(timeout=30)
        assert watching.returncode == 0 and "Traceback" not in errors, errors
        frames = tables.split("─" * 80 + "\n")  # each after the first, a rule before it
        assert len(frames) >= 2 and frames[0] == ""
        assert f"revision {done['currentRevision']} is stable" in frames[-1]
    finally:
        if watching.poll() is None:  # an assertion failed before the SIGINT
            watching.kill()
            watching.communicate()


def test_refusals_errors_and_completion(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    ns = namespace
    cluster.apply(rollout(replicas=1), ns)
    eventually(lambda: status(cluster, ns).get("phase") == "Healthy", 120, "Healthy")
    # refused, missing, usage
    rejected = plugin(cluster, "promote", "web", "-n", ns)
    assert rejected.returncode == 1 and "Rejected" in rejected.stdout
    missing = plugin(cluster, "get", "nothere", "-n", ns)
    assert (missing.returncode, missing.stderr) == (
        1,
        f"error: Rollout nothere not found in namespace {ns}\n",
    )
    assert plugin(cluster, "get", "web", "--bogus").returncode == 2

    viewer, config = read_only_kubeconfig(cluster, ns, tmp_path)
    who = f"system:serviceaccount:{ns}:viewer"
    denied = plugin(cluster, "promote", "web", "--kubeconfig", str(viewer), "--context", "viewer")
    assert (denied.returncode, denied.stderr) == (
        1,
        f"error: forbidden: cannot create rolloutactions.nonstop.dev in namespace {ns} (as {who})\n",
    )
    # what it may not read becomes a note on the page, not a failure
    partial = plugin(cluster, "--context", "viewer", "get", "web", env={"KUBECONFIG": str(viewer)})
    assert partial.returncode == 0 and "phase Healthy" in partial.stdout
    assert f"cannot show pods: forbidden: cannot list pods in namespace {ns}" in partial.stdout

    # no cluster there: exit 3, one line, no traceback
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    unreachable = plugin(cluster, "list", "--kubeconfig", str(dead))
    assert unreachable.returncode == 3 and unreachable.stdout == ""
    assert unreachable.stderr == (
        "error: cannot reach the cluster at https://127.0.0.1:1: [Errno 111] Connection refused\n"
    )

    # kubectl asks kubectl_complete-nonstop (beside kubectl-nonstop) to complete
    words = cluster.kubectl("__complete", "nonstop", "pro").stdout.split()
    assert "promote" in words and "promote-full" in words
    names = cluster.kubectl("__complete", "nonstop", "get", "-n", ns, "").stdout.split()
    assert "web" in names

    # no answer within --timeout: exit 4, and the action stays for nonstop to answer later
    waited = plugin(cluster, "pause", "web", "-n", ns, "--timeout", "0")
    assert waited.returncode == 4, waited.stderr
    assert re.fullmatch(
        r"error: rolloutaction/(web-pause-\w+) created; nonstop has not answered within 0s"
        r" \(is the operator running, and watching this namespace\?\)\n",
        waited.stderr,
    ), waited.stderr
    name = waited.stderr.split("/")[1].split()[0]
    assert cluster.get("rolloutactions.nonstop.dev", name, "-n", ns)["spec"]["action"] == "pause"
