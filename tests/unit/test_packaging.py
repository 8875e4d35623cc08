"""pyproject.toml says what nonstop needs: every third-party module that operator/nonstop
imports is a declared dependency, the floors stated hold for what is installed, and
constraints/floors.txt pins exactly those floors (how each was chosen is written there)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).parents[2]
PACKAGE = REPO / "operator" / "nonstop"
FLOORS = REPO / "constraints" / "floors.txt"

# Top-level module -> the distribution that installs it (they differ for some: yaml).
DISTRIBUTION = {
    "click": "click",
    "celpy": "cel-python",
    "kopf": "kopf",
    "kubernetes": "kubernetes",
    "prometheus_client": "prometheus-client",
    "pydantic": "pydantic",
    "rich": "rich",
    "structlog": "structlog",
    "tabulate": "tabulate",
    "urllib3": "urllib3",
    "yaml": "PyYAML",
}

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def version_tuple(text: str) -> tuple[int, ...]:
    """Release numbers of a plain version ("2.13.5" -> (2, 13, 5)); pre-release tags end it."""
    parts = []
    for part in text.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != part:
            break
    return tuple(parts)


def requirement(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(canonical name, [(operator, version)]) of a PEP 508 string without markers."""
    match = _REQUIREMENT.match(text.split(";", maxsplit=1)[0])
    assert match, text
    specs = [
        (op, version.strip())
        for op, version in re.findall(r"(>=|<=|==|!=|~=|>|<)\s*([^,\s]+)", match.group(3))
    ]
    return canonical(match.group(1)), specs


def project() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
    return data


def declared() -> dict[str, list[tuple[str, str]]]:
    return dict(requirement(r) for r in project()["project"]["dependencies"])


def third_party_imports() -> dict[str, list[str]]:
    """Top-level third-party modules imported anywhere under operator/nonstop (also inside
    functions: the CLI imports kopf only for `run`), each with the files that import it."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in {"nonstop", "__future__"}:
                    continue
                found.setdefault(top, []).append(str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_is_declared() -> None:
    imports = third_party_imports()
    unmapped = sorted(set(imports) - set(DISTRIBUTION))
    assert not unmapped, f"add these modules to DISTRIBUTION and pyproject.toml: {unmapped}"
    deps = declared()
    missing = {
        DISTRIBUTION[module]: sorted(set(files))
        for module, files in imports.items()
        if canonical(DISTRIBUTION[module]) not in deps
    }
    assert not missing, f"imported but not in [project.dependencies]: {missing}"


def test_the_scan_sees_top_level_and_lazy_imports() -> None:
    imports = third_party_imports()
    assert "operator/nonstop/providers.py" in imports["urllib3"]
    assert any(f.startswith("operator/nonstop/kube/") for f in imports["urllib3"])
    assert any(f.startswith("operator/nonstop/cli/") for f in imports["kopf"])
    assert {"kubernetes", "pydantic", "yaml"} <= set(imports)


def test_the_module_map_is_what_is_installed() -> None:
    installed = metadata.packages_distributions()
    for module, dist in DISTRIBUTION.items():
        assert canonical(dist) in {canonical(d) for d in installed.get(module, [])}, module


def test_no_dependency_is_declared_without_an_import() -> None:
    """A runtime dependency that nothing imports is dead weight (or a missing import)."""
    used = {canonical(DISTRIBUTION[m]) for m in third_party_imports()}
    assert set(declared()) <= used


def test_installed_versions_meet_the_declared_floors() -> None:
    wrong = []
    for name, specs in declared().items():
        have = version_tuple(metadata.version(name))
        for op, version in specs:
            want = version_tuple(version)
            ok = {
                ">=": have >= want,
                ">": have > want,
                "<": have < want,
                "<=": have <= want,
                "==": have == want,
                "!=": have != want,
            }.get(op, True)
            if not ok:
                wrong.append(f"{name} {metadata.version(name)} is not {op}{version}")
    assert not wrong


def test_every_dependency_has_a_floor() -> None:
    assert all(any(op == ">=" for op, _ in specs) for specs in declared().values()), declared()


def test_kubernetes_floor_is_where_param_serialize_arrived() -> None:
    """kube/client.py and leader.py call ApiClient.param_serialize, new in kubernetes 37."""
    from kubernetes.client import ApiClient

    assert hasattr(ApiClient, "param_serialize")
    floor = dict(declared()["kubernetes"])[">="]
    assert version_tuple(floor) >= (37,)


def test_the_floors_file_pins_every_floor() -> None:
    pins = {}
    for text in FLOORS.read_text().splitlines():
        line = text.split("#", maxsplit=1)[0].strip()
        if line:
            name, specs = requirement(line)
            [(op, version)] = specs
            assert op == "==", line
            pins[name] = version
    floors = {name: dict(specs)[">="] for name, specs in declared().items()}
    assert set(pins) == set(floors)
    for name, floor in floors.items():
        same = version_tuple(pins[name] + ".0.0")[:3] == version_tuple(floor + ".0.0")[:3]
        assert same, (name, pins[name], floor)


def test_license_is_an_spdx_expression_the_backend_understands() -> None:
    """PEP 639: `license = "<SPDX>"`; a table is deprecated, and the string needs
    setuptools 77 or later."""
    data = project()
    assert data["project"]["license"] == "Apache-2.0"
    [setuptools] = [
        requirement(r) for r in data["build-system"]["requires"] if r.startswith("setuptools")
    ]
    assert version_tuple(dict(setuptools[1])[">="]) >= (77,)


def _keys(node: Any, path: str = "") -> set[str]:
    if not isinstance(node, dict):
        return set()
    out = set()
    for key, value in node.items():
        here = f"{path}.{key}" if path else key
        out.add(here)
        out |= _keys(value, here)
    return out


def _schema_keys(node: dict[str, Any], path: str = "") -> set[str]:
    out = set()
    for key, sub in (node.get("properties") or {}).items():
        here = f"{path}.{key}" if path else key
        out.add(here)
        out |= _schema_keys(sub, here)
    return out


def test_the_chart_schema_covers_every_value() -> None:
    """helm/nonstop/values.schema.json declares each key of values.yaml (and refuses others),
    so that `helm install --set operator.wokers=4` fails instead of doing nothing."""
    import json

    import yaml

    chart = REPO / "helm" / "nonstop"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    schema = json.loads((chart / "values.schema.json").read_text())
    # maps of the user's own keys (resources, nodeSelector, ...) end where the schema's do
    declared_keys = _schema_keys(schema)
    missing = {
        key
        for key in _keys(values)
        if key not in declared_keys
        and (key.rpartition(".")[0] in declared_keys | {""})
        and not _open(schema, key)
    }
    assert not missing, f"values.yaml keys without a schema: {sorted(missing)}"
    unknown = declared_keys - _keys(values) - {"global", "operator.resources.claims"}
    assert not unknown, f"schema keys that values.yaml does not have: {sorted(unknown)}"


def _open(schema: dict[str, Any], key: str) -> bool:
    """Whether the parent of `key` is a map of the user's own keys (no fixed properties)."""
    node = schema
    for part in key.split(".")[:-1]:
        node = node["properties"][part]
    return "properties" not in node
