"""`triage evaluate --suite`: the per-behaviour table on stdout and results/behaviour_suite.{json,csv} on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from triage.models.base import Classifier
from triage.settings import get_settings
from triage_cli.main import app


@pytest.fixture
def model_dir(tiny_classifier: Classifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    out = tmp_path / "model"
    out.mkdir()
    tiny_classifier.save(out)
    yield out
    get_settings.cache_clear()


def test_suite_prints_every_behaviour_and_writes_both_files(model_dir: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = CliRunner().invoke(app, ["evaluate", "--suite", "--model-dir", str(model_dir), "--results", str(results)])
    assert run.exit_code == 0, run.output
    for name in ("negation", "buried_threat", "sexual_vs_medical", "flagged or review", "left alone"):
        assert name in run.output
    data = json.loads((results / "behaviour_suite.json").read_text())
    assert data["cases_total"] >= 400
    overall = next(s for s in data["slices"] if s["group"] == "all" and s["language"] == "all")
    assert overall["must_flag"] + overall["must_not_flag"] == data["cases_total"]
    assert 0.0 <= overall["flag_accuracy"] <= 1.0
    header = (results / "behaviour_suite.csv").read_text().splitlines()[0]
    assert header.startswith("group,language,must_flag,flagged,caught")


def test_a_bad_suite_file_exits_2_and_names_the_problem(model_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"language": "en", "cases": [
        {"id": "x1", "group": "negation", "text": "hello", "expected": ["hateful"], "must_flag": True}]}))
    run = CliRunner().invoke(app, ["evaluate", "--suite", "--suite-file", str(bad), "--model-dir", str(model_dir),
                                   "--results", str(tmp_path / "r")])
    assert run.exit_code == 2
    assert "unknown category 'hateful'" in run.output
    assert not (tmp_path / "r").exists()
