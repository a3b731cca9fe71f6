"""notebooks/escalation_trends.ipynb answers its three questions with plain SQL over a real decision log."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.unit.decisions.synthetic import fill
from triage.decisions.store import DecisionStore
from triage.taxonomy import Policy

pytestmark = pytest.mark.integration
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "escalation_trends.ipynb"
ROOT = Path(__file__).resolve().parents[2]


def test_escalation_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: Policy) -> None:
    home = tmp_path / "home"
    store = DecisionStore(f"sqlite:///{home / 'decisions.db'}")
    store.migrate()
    fill(store, policy, n=800, weeks=3)  # spam rises in the last week
    store.close()
    monkeypatch.setenv("TRIAGE_HOME", str(home))
    monkeypatch.delenv("TRIAGE_DECISIONS__URL", raising=False)
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}:{__import__('os').environ.get('PYTHONPATH', '')}")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for out in cell.get("outputs", []))
    assert "TOP RISING CATEGORY: spam" in text
    assert "WAITING FOR REVIEW:" in text and "MOST DISPUTED CATEGORY:" in text
    assert str(home / "decisions.db") in text
    tables = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "text/html" in o.get("data", {})]
    assert len(tables) == 3
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
