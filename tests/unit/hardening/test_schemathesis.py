"""schemathesis over every route of a live server, all checks, with and without API keys: zero failures.

Few examples per operation keep it near a minute in CI; the seed is fixed so a failure replays.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.unit.hardening.conftest import build_app
from tests.unit.hardening.live import serve
from triage.models.base import LoadedModel
from triage.settings import Settings
from triage.taxonomy import Policy


@pytest.mark.slow
@pytest.mark.parametrize("keys", [False, True], ids=["open", "keyed"])
def test_schemathesis_all_checks_zero_failures(settings: Settings, tiny_loaded: LoadedModel, policy: Policy,
                                               keys: bool, tmp_path: Path) -> None:
    configured = settings.model_copy(update={"api_keys": [SecretStr("ops:st-key-123")] if keys else []})
    app = build_app(configured, tiny_loaded, policy)
    st = Path(sys.executable).parent / "st"
    with serve(app) as url:
        args = [str(st), "run", f"{url}/openapi.json", "--checks", "all", "--max-examples", "5", "--seed", "1",
                "--no-color", "-H", "X-Triage-Webhook-Secret: dev-secret"]
        if keys:
            args += ["-H", "X-API-Key: st-key-123"]
        run = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout
    assert "Selected: 12/12" in run.stdout.replace("  ", " ") or "12 selected" in run.stdout
