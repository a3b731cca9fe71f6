"""The comparison notebook runs end to end on a small real MLflow store (champion and challenger)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from training.pipeline import train
from training.retrain import retrain
from triage.data.sources import load_examples
from triage.settings import Settings

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "compare_models.ipynb"


def test_compare_models_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    monkeypatch.setenv("TRIAGE_DATASETS_DIR", str(home / "no-datasets"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings()
    base = load_examples()
    train(settings, "baseline", examples=base)
    retrain(settings, "baseline", expert=[], base=base)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "COMPARISON TABLE" in text
    assert "golden/macro_f1" in text and "champion" in text and "challenger" in text
    assert "gate:" in text
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 3, "expected bars, reliability diagrams and confusion matrices"
