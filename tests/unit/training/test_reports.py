"""The quality table and the routing report end to end, on a tiny baseline saved to a temporary directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import quality_table
from training import routing_report
from triage.models.base import Classifier
from triage.settings import Settings


@pytest.fixture(scope="module")
def example_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings on the shipped example tickets only (no shared datasets), MLflow in a temporary home shared by the
    module (creating an MLflow database costs seconds)."""
    home = tmp_path_factory.mktemp("reports") / "home"
    return Settings(home=home, env="test", datasets_dir=None, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def model_dir(tmp_path: Path, tiny_classifier: Classifier) -> Path:
    directory = tmp_path / "baseline"
    tiny_classifier.save(directory)
    return directory


def _mlflow_runs(settings: Settings, name: str) -> list[dict[str, float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    exp = client.get_experiment_by_name(settings.mlflow.experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], filter_string=f"attributes.run_name = '{name}'")
    return [r.data.metrics for r in runs]


def test_quality_table_compares_two_saved_models(tmp_path: Path, example_settings: Settings, model_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results" / "quality_table"
    code = quality_table.main(["--model-dir", f"a={model_dir}", "--model-dir", f"b={model_dir}", "--out", str(out)],
                              settings=example_settings)
    assert code == 0
    data = json.loads(out.with_suffix(".json").read_text())
    assert list(data["models"]) == ["baseline (a)", "baseline (b)"]
    a, b = data["models"]["baseline (a)"], data["models"]["baseline (b)"]
    # The same model on the same split measures the same.
    assert a == b
    assert data["test_examples"] == a["rows"] > 0
    assert set(a["by_source"]) == {"examples"}
    assert sum(s["rows"] for s in a["by_language"].values()) == a["rows"]
    assert 0.0 <= a["macro_auprc"] <= 1.0 and "severity_accuracy" in a["severity"]
    # No openai_moderation rows in the example tickets: the focus figure is undefined, not zero.
    assert a["focus"]["rows"] == 0 and a["focus"]["macro_auprc"] is None
    # The behaviour suite ran for both, per behaviour.
    groups = {row["group"] for row in data["suite"]["baseline (a)"]}
    assert {"negation", "direct_threat", "all"} <= groups
    md = out.with_suffix(".md").read_text()
    assert "## Behaviour suite per behaviour" in md and "| negation |" in md and "| examples |" in md
    assert "baseline (a)" in capsys.readouterr().out
    runs = _mlflow_runs(example_settings, "quality-table")
    assert len(runs) == 1 and runs[0]["baseline_a.macro_auprc"] == pytest.approx(a["macro_auprc"])


def test_quality_table_refuses_a_malformed_model_dir(example_settings: Settings,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert quality_table.main(["--model-dir", "no-equals-sign"], settings=example_settings) == 2
    assert "expected NAME=DIR" in capsys.readouterr().err


def test_routing_report_reports_both_promises_and_the_workload(tmp_path: Path, example_settings: Settings,
                                                               model_dir: Path) -> None:
    results = tmp_path / "results"
    code = routing_report.main(["--model-dir", str(model_dir), "--results", str(results)], settings=example_settings)
    assert code == 0
    data = json.loads((results / "routing_report.json").read_text())
    n = data["overall"]["test_rows"]
    assert n > 0
    cats = [r["category"] for r in data["auto_clear"]]
    assert cats == [r["category"] for r in data["categories"]]
    for r in data["auto_clear"]:
        assert 0 <= r["auto_cleared"] <= r["positives"]
        # The example tickets hold far fewer than 50 positives per category: none can be judged.
        assert r["status"].startswith("insufficient test positives")
    assert data["severity"][0]["severity"] == "high or worse"
    assert data["severity"][0]["target_recall"] == pytest.approx(0.98)
    work = data["workload"]["overall"]
    assert work["rows"] == n and work["review_share"] == pytest.approx(1 - data["overall"]["auto_share_guarded"])
    assert set(data["workload"]["by_key"]) == {"examples"}
    causes = data["workload"]["clean_review_causes"]
    clean_reviewed = work["clean_rows"] * work["clean_review_share"]
    assert causes and all(c["alone"] <= c["held"] <= clean_reviewed + 1e-9 for c in causes)
    assert sum(c["alone"] for c in causes) <= clean_reviewed + 1e-9 <= sum(c["held"] for c in causes)
    md = (results / "routing_report.md").read_text()
    assert "Auto-cleared violating texts" in md and "Too few test positives to judge" in md
    assert "What sends clean texts to review" in md
    runs = _mlflow_runs(example_settings, "routing-report")
    assert len(runs) == 1 and runs[0]["review_share"] == pytest.approx(work["review_share"])


def test_routing_report_refits_the_promises_under_a_changed_policy(tmp_path: Path, example_settings: Settings,
                                                                    model_dir: Path) -> None:
    import re

    def report(settings: Settings, name: str) -> dict:
        results = tmp_path / name
        assert routing_report.main(["--model-dir", str(model_dir), "--results", str(results), "--refit-points",
                                    "--no-mlflow"], settings=settings) == 0
        return json.loads((results / "routing_report.json").read_text())

    strict = report(example_settings, "strict")
    assert strict["overall"]["points_origin"].startswith("refitted on the validation split")
    # The same policy, every category letting up to 60% of its tickets skip review: the clear points move up.
    text = Path("triage/policies/default.yaml").read_text()
    loose_policy = tmp_path / "loose.yaml"
    loose_policy.write_text(re.sub(r"max_auto_clear_miss: [0-9.]+", "max_auto_clear_miss: 0.6", text))
    loose = report(example_settings.model_copy(update={"policy": loose_policy}), "loose")
    policy = example_settings.load_policy()
    for name, point in strict["clear_points"].items():
        if name != "severity>=high":
            assert point["max_miss"] == pytest.approx(policy.category(name).max_auto_clear_miss), name
            assert loose["clear_points"][name]["max_miss"] == pytest.approx(0.6), name
    assert loose["clear_points"] != strict["clear_points"]


def test_routing_report_routes_with_the_cards_auto_clear_points(tmp_path: Path, example_settings: Settings,
                                                                 model_dir: Path) -> None:
    from triage.conformal import ClearPoint
    from triage.models.io import load_classifier

    classifier = load_classifier(model_dir)
    # Clear points at 0: no score is below them, so nothing may be auto-cleared and every text goes to review.
    classifier.card.extra["clear_points"] = {
        c: ClearPoint(c, 0.05, 0.0, False, None, None, 0.0, 0, 0).to_dict() for c in classifier.card.categories}
    strict = tmp_path / "strict"
    classifier.save(strict)
    results = tmp_path / "results-strict"
    assert routing_report.main(["--model-dir", str(strict), "--results", str(results), "--no-mlflow"],
                               settings=example_settings) == 0
    data = json.loads((results / "routing_report.json").read_text())
    assert data["overall"]["auto_clear_on_card"] is True
    assert data["workload"]["overall"]["review_share"] == 1.0
    assert all(r["auto_cleared"] == 0 and r["clear_threshold"] == 0.0 for r in data["auto_clear"])
    assert all(r["caught"] == r["severe"] for r in data["severity"])
