"""The in-memory world of the tests (the real reconcile pass over an in-memory API server,
with the Deployment and EndpointSlice controllers and a clock played): it lives in the
package (nonstop.simulate.world) so that `kubectl nonstop plan` runs on it too; this module
keeps the tests' imports."""

from nonstop.simulate.world import (
    PLAYED,
    SLICE_MANAGER,
    T0,
    Dep,
    World,
    http_route,
    rollout_raw,
)

__all__ = ["PLAYED", "SLICE_MANAGER", "T0", "Dep", "World", "http_route", "rollout_raw"]
