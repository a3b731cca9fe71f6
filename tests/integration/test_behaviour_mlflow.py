"""`triage evaluate --suite --mlflow`: the suite's rates and files land in a real MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from rich.console import Console

from triage.models.base import LoadedModel
from triage.settings import Settings
from triage_cli import suite

pytestmark = pytest.mark.integration


def test_suite_results_are_logged_to_mlflow(settings: Settings, tiny_loaded: LoadedModel, tmp_path: Path) -> None:
    report = suite.run(settings, tiny_loaded, None, tmp_path / "results", True, Console(width=200))
    client = mlflow.MlflowClient(settings.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(settings.mlflow.experiment).experiment_id],
                              "tags.kind = 'behaviour_suite'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["model_version"] == "1" and run.data.tags["model_alias"] == "champion"
    overall = report.slice()
    assert run.data.metrics["suite.all.all.flag_accuracy"] == pytest.approx(overall.flag_accuracy)
    assert run.data.metrics["suite.all.all.clean_accuracy"] == pytest.approx(overall.clean_accuracy)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"behaviour_suite.json", "behaviour_suite.csv"}
