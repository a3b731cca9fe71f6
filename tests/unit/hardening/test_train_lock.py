"""Two first trainings at once on a fresh SQLite MLflow store: both finish, the store stays usable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import sys
from triage.adapters import mlflow_registry as registry
from triage.settings import Settings
settings = Settings(home=sys.argv[1], env="test")
with registry.run(settings, "concurrent-" + sys.argv[2]):
    registry.log_metrics({"m": float(sys.argv[2])})
print("ok")
"""


@pytest.mark.slow
def test_two_first_runs_serialise_on_the_store_lock(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3]), "MLFLOW_TRACKING_URI": ""}
    env.pop("MLFLOW_TRACKING_URI")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(home), str(i)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert out.strip().endswith("ok")
    from mlflow import MlflowClient

    from triage.adapters import mlflow_registry as registry
    from triage.settings import Settings

    client: MlflowClient = registry.configure(Settings(home=home, env="test"))
    experiment = client.get_experiment_by_name("triage")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["concurrent-0", "concurrent-1"]
    assert (home / ".mlflow-store.lock").exists()
