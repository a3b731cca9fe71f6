"""The comparison notebook runs end to end on a small real MLflow store (champion and challenger), saved with
its output as `make notebook` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.pipeline import train
from training.retrain import retrain
from triage.adapters import mlflow_registry as registry
from triage.data.sources import load_examples
from triage.settings import Settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "compare_models.ipynb"


def test_compare_models_notebook_runs_and_is_saved_with_output(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    monkeypatch.setenv("TRIAGE_DATASETS_DIR", str(home / "no-datasets"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings()
    base = load_examples()
    train(settings, "baseline", examples=base)
    retrain(settings, "baseline", expert=[], base=base)
    # A promotion: @challenger and @champion now name one version; the notebook compares with the other one.
    client = registry.configure(settings)
    name = settings.mlflow.model_name
    first = registry.alias_version(client, name, registry.CHAMPION)
    promoted = registry.alias_version(client, name, registry.CHALLENGER)
    assert first and promoted and first != promoted
    registry.set_alias(client, name, registry.CHAMPION, promoted)

    out = tmp_path / "results"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "run_notebook.py"), str(NOTEBOOK), "--out",
                           str(out)], capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((out / "compare_models.ipynb").read_text())
    outputs = [o for c in saved["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    text = "\n".join("".join(o.get("text", "")) for o in outputs)
    assert f"champion v{promoted}" in text and f"challenger v{first}" in text
    assert f"comparing with the newest other version, v{first}" in text
    assert "the whole golden test split" in text
    assert "COMPARISON TABLE" in text and "golden/macro_f1" in text and "gate:" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "expected bars, reliability diagrams and confusion matrices"
    html = (out / "compare_models.html").read_text()
    assert "COMPARISON TABLE" in html and html.count("data:image/png;base64") >= 3
