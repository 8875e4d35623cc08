"""nonstop: a Kubernetes operator for zero-downtime rollouts."""

__version__ = "0.1.0"
