"""The quality table and the routing report on models taken from a real MLflow registry, by alias and version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import quality_table
from training import routing_report
from triage.adapters import mlflow_registry as registry
from triage.models.base import Classifier
from triage.settings import Settings

pytestmark = pytest.mark.integration


def test_reports_load_registered_models(tmp_path: Path, tiny_classifier: Classifier) -> None:
    settings = Settings(home=tmp_path / "home", env="test", datasets_dir=None, _env_file=None)  # type: ignore[call-arg]
    with registry.run(settings, name="train-baseline"):
        client = registry.configure(settings)
        uri = registry.log_classifier(tiny_classifier, ["example"])
        version = registry.register(client, uri, settings.mlflow.model_name)
        registry.set_alias(client, settings.mlflow.model_name, "champion", version)

    out = tmp_path / "results" / "quality_table"
    assert quality_table.main(["--aliases", "champion", "--versions", version, "--no-suite", "--out", str(out)],
                              settings=settings) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["models"]
    assert list(rows) == [f"baseline v{version} (@champion)", f"baseline v{version}"]
    first, second = rows.values()
    assert first["macro_auprc"] == pytest.approx(second["macro_auprc"])

    assert routing_report.main(["--alias", "champion", "--results", str(tmp_path / "results")], settings=settings) == 0
    data = json.loads((tmp_path / "results" / "routing_report.json").read_text())
    assert data["overall"]["model"] == f"baseline v{version} (@champion) from the registry"

    # An alias nobody set is a clear error, not a traceback.
    assert quality_table.main(["--aliases", "challenger", "--out", str(out)], settings=settings) == 2
    assert routing_report.main(["--alias", "challenger", "--results", str(tmp_path / "r2")], settings=settings) == 2
