"""The in-memory API server of the tests: it lives in the package (nonstop.simulate) so that
`kubectl nonstop plan` runs on it too; this module keeps the tests' imports."""

from nonstop.simulate.memory_kube import (
    KINDS,
    RESOURCES,
    SERVICE_NAME_LABEL,
    T0,
    Failure,
    Key,
    MemoryKube,
    api_error,
    merge_patch,
    selects,
    stamp,
    without_nulls,
)

__all__ = [
    "KINDS",
    "RESOURCES",
    "SERVICE_NAME_LABEL",
    "T0",
    "Failure",
    "Key",
    "MemoryKube",
    "api_error",
    "merge_patch",
    "selects",
    "stamp",
    "without_nulls",
]
