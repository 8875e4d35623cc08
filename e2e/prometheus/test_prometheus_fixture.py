"""Self-test of the Prometheus fixture: Debian's Prometheus scrapes the test exporter, the HTTP
API sees the error rate and per-pod latencies the test set, and a stopped server refuses
queries until it is started again. Needs no cluster (it requests none of conftest's fixtures).

    .venv/bin/python -m pytest e2e/prometheus/test_prometheus_fixture.py -q -p no:cacheprovider -s
"""

from __future__ import annotations

import statistics
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.prometheus.exporter import Exporter
from e2e.prometheus.server import PrometheusError, PrometheusServer, install_prometheus

STABLE, CANARY = "A", "B"
CANARY_ERROR_RATE = 0.2


def error_ratio(revision: str, window: str = "10s") -> str:
    return (
        f'sum(rate(nonstop_test_requests_total{{code="500",revision="{revision}"}}[{window}]))'
        f' / sum(rate(nonstop_test_requests_total{{revision="{revision}"}}[{window}]))'
    )


@pytest.fixture(scope="module")
def prometheus_binary() -> Path:
    began = time.monotonic()
    try:
        binary = install_prometheus()
    except PrometheusError as e:
        error = str(e)
    else:
        error = ""
    if error:  # no skip: a missing Prometheus is a failure, with install.sh's own message
        pytest.fail(error, pytrace=False)
    print(f"\nprometheus binary {binary} ready in {time.monotonic() - began:.2f}s")
    return binary


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    with Exporter([STABLE, CANARY], pods=3, requests_per_scrape=200) as e:
        e.set_error_rate(STABLE, 0.0)
        e.set_error_rate(CANARY, CANARY_ERROR_RATE)
        e.set_latency(STABLE, mean=0.10, spread=0.005)
        e.set_latency(CANARY, mean=0.30, spread=0.01)
        yield e


def test_exporter_alone() -> None:
    e = Exporter(["s", 'odd"rev'], pods=2, requests_per_scrape=10)
    e.set_error_rate("s", 0.25)
    e.render()
    text = e.render()
    assert 'nonstop_test_requests_total{revision="s",code="500"} 5' in text
    assert 'nonstop_test_requests_total{revision="s",code="200"} 15' in text
    assert 'revision="odd\\"rev"' in text
    assert text.count("nonstop_test_latency_seconds{") == 4
    assert e.scrapes == 2


def test_prometheus_scrapes_exporter_and_restarts(
    prometheus_binary: Path, exporter: Exporter, tmp_path: Path
) -> None:
    prom = PrometheusServer(prometheus_binary, tmp_path / "prometheus", [exporter.target])
    try:
        prom.start()
        assert prom.address.startswith("http://127.0.0.1:")
        print(f"prometheus {prom.address} ready in {prom.last_start_seconds:.2f}s")
        began = time.monotonic()

        # The canary's error rate as analysis would compute it: within ~10 s of the start.
        result = prom.wait_for(
            error_ratio(CANARY),
            lambda r: len(r) == 1 and abs(float(r[0]["value"][1]) - CANARY_ERROR_RATE) <= 0.05,
            timeout=12,  # ~5 s before Prometheus's first scrape, then two scrapes
        )
        print(
            f"canary error ratio {float(result[0]['value'][1]):.3f} after "
            f"{time.monotonic() - began:.2f}s"
        )
        assert prom.values(error_ratio(STABLE)) == [0.0]

        # One latency sample per pod and revision, around each revision's mean.
        canary = prom.query(f'nonstop_test_latency_seconds{{revision="{CANARY}"}}')
        stable = prom.query(f'nonstop_test_latency_seconds{{revision="{STABLE}"}}')
        assert sorted(s["metric"]["pod"] for s in canary) == exporter.pod_names(CANARY)
        assert sorted(s["metric"]["pod"] for s in stable) == exporter.pod_names(STABLE)
        canary_values = [float(s["value"][1]) for s in canary]
        stable_values = [float(s["value"][1]) for s in stable]
        assert all(0.25 < v < 0.35 for v in canary_values), canary_values
        assert all(0.07 < v < 0.13 for v in stable_values), stable_values
        assert statistics.mean(canary_values) > statistics.mean(stable_values)
        assert prom.targets_health() == {exporter.target: "up"}

        # Stopped mid-analysis: queries fail with a refused connection.
        address = prom.address
        prom.stop()
        assert not prom.running
        with pytest.raises(urllib.error.URLError) as refused:
            prom.query(error_ratio(CANARY))
        assert isinstance(refused.value.reason, ConnectionRefusedError), refused.value

        # Started again: same address, its data kept, scraping goes on.
        prom.start()
        assert prom.address == address
        print(f"prometheus restarted in {prom.last_start_seconds:.2f}s")
        restarted = time.monotonic()
        prom.wait_for_targets(timeout=15)  # Prometheus 2.x: first scrape ~5 s after start
        print(f"target scraped again {time.monotonic() - restarted:.2f}s after the restart")
        prom.wait_for(
            error_ratio(CANARY),
            lambda r: len(r) == 1 and abs(float(r[0]["value"][1]) - CANARY_ERROR_RATE) <= 0.05,
            timeout=10,
        )
    finally:
        prom.stop()
    log = prom.log_path.read_text()
    assert log.count("--- nonstop: starting") == 2
