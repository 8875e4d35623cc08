"""A real Prometheus server (Debian's package) and a test-controlled exporter for the
metric-analysis e2e tests: see docs/prometheus.md."""

from e2e.prometheus.exporter import Exporter
from e2e.prometheus.server import (
    PrometheusError,
    PrometheusQueryError,
    PrometheusServer,
    install_prometheus,
)

__all__ = [
    "Exporter",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusServer",
    "install_prometheus",
]
