"""Fixtures of the end-to-end suite: a real control plane (e2e/cluster/up.sh), the operator
as a real process, one namespace per test."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.kube import REPO, Cluster, Operator, ReadyEndpointWatcher
from e2e.prometheus import Exporter, PrometheusError, PrometheusServer, install_prometheus

CLUSTER_NAME = os.environ.get("NONSTOP_E2E_CLUSTER", "nonstop-e2e")
CACHE = Path(
    os.environ.get(
        "NONSTOP_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nonstop"
    )
)


FIGURES: list[str] = []


def record_figure(text: str) -> None:
    """A measured figure worth reading in the CI log (not an assertion)."""
    FIGURES.append(text)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("figures measured by the e2e tests")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    if os.environ.get("CI"):  # CI starts from a clean cluster; developers reuse theirs
        subprocess.run(
            ["bash", str(REPO / "e2e/cluster/down.sh"), "--name", CLUSTER_NAME],
            capture_output=True,
            timeout=300,
            check=False,
        )
    up = subprocess.run(
        ["bash", str(REPO / "e2e/cluster/up.sh"), "--name", CLUSTER_NAME],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if up.returncode != 0:
        pytest.fail(f"the local control plane did not come up:\n{up.stderr[-3000:]}")
    kubeconfig = up.stdout.strip().splitlines()[-1]
    c = Cluster(kubeconfig=kubeconfig, bin_dir=CACHE / "bin")
    # the CRD as committed, so these tests exercise what users install
    c.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    c.kubectl("wait", "--for=condition=Established", "crd/rollouts.nonstop.dev", "--timeout=60s")
    yield c
    if not os.environ.get("NONSTOP_E2E_KEEP"):
        subprocess.run(
            ["bash", str(REPO / "e2e/cluster/down.sh"), "--name", CLUSTER_NAME],
            capture_output=True,
            timeout=300,
            check=False,
        )


@pytest.fixture(scope="session")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(cluster, tmp_path_factory.mktemp("operator"))
    op.start()
    yield op
    op.stop()


@pytest.fixture
def namespace(
    cluster: Cluster, operator: Operator, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = cluster.create_namespace(f"t-{uuid.uuid4().hex[:8]}")
    yield name
    call = getattr(request.node, "rep_call", None)
    if call is not None and call.failed:
        print(
            "\n--- operator log (last 80 lines) ---\n"
            + "\n".join(operator.logs().splitlines()[-80:])
        )
        print(cluster.kubectl("describe", "rollouts", "-n", name, check=False).stdout)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def watch_endpoints(
    cluster: Cluster, namespace: str
) -> Iterator[Callable[[int], ReadyEndpointWatcher]]:
    """watch_endpoints(n): watch the Service "web" from the moment n endpoints are ready."""
    started: list[ReadyEndpointWatcher] = []

    def start(ready: int, service: str = "web") -> ReadyEndpointWatcher:
        watcher = ReadyEndpointWatcher(cluster.api(), namespace, service).start()
        started.append(watcher)
        watcher.wait_for(ready)
        return watcher

    yield start
    for w in started:
        w._stop.set()


@pytest.fixture(scope="session")
def prometheus_binary() -> Path:
    """Debian's Prometheus, unpacked into the cache by e2e/prometheus/install.sh."""
    try:
        return install_prometheus()
    except PrometheusError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def metrics_exporter() -> Iterator[Exporter]:
    """An exporter whose error rate and latency per revision the test sets."""
    with Exporter([], pods=3, requests_per_scrape=100) as e:
        yield e


@pytest.fixture
def prometheus(
    prometheus_binary: Path, metrics_exporter: Exporter, tmp_path: Path
) -> Iterator[PrometheusServer]:
    """A real Prometheus on 127.0.0.1 scraping the exporter every second."""
    with PrometheusServer(
        prometheus_binary, tmp_path / "prometheus", [metrics_exporter.target]
    ) as p:
        p.wait_for_targets()  # the first scrape comes about 5 s after the start
        yield p
