"""The layering rules, checked on the source: triage/ is the core; serving/ and training/ never meet;
only adapter modules import mlflow or label_studio_sdk."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = {"triage/adapters/mlflow_registry.py", "triage/adapters/labelstudio.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize(("package", "forbidden"), [
    ("triage", {"serving", "training", "triage_cli"}),
    ("serving", {"training", "triage_cli"}),
    ("training", {"serving", "triage_cli"}),
])
def test_packages_import_only_downstream(package: str, forbidden: set[str]) -> None:
    offenders = {str(p.relative_to(ROOT)): sorted(_imports(p) & forbidden) for p in _files(package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_adapters_import_mlflow_or_label_studio() -> None:
    offenders = []
    for package in ("triage", "serving", "training", "triage_cli"):
        for p in _files(package):
            rel = str(p.relative_to(ROOT))
            if rel not in ADAPTERS and _imports(p) & {"mlflow", "label_studio_sdk"}:
                offenders.append(rel)
    assert offenders == []
