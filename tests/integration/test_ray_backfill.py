"""`triage score --engine ray`: the same rows as a plain `triage score`, and a resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.api_server import TRIAGE, cli
from triage.data.sources import load_examples

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_ray_backfill_matches_plain_score_and_resumes_after_kill(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    env = {**os.environ, "TRIAGE_HOME": str(tmp_path / "home"), "TRIAGE_DATASETS_DIR": str(tmp_path / "none"),
           "TRIAGE_LOG_LEVEL": "WARNING", "TRIAGE_LABELSTUDIO__ENABLED": "false", "RAY_AUTH_MODE": "disabled"}
    cli(env, "train", "--model", "baseline")
    texts = [ex.text for ex in load_examples()]
    tickets = tmp_path / "tickets.jsonl"
    tickets.write_text("".join(json.dumps({"id": f"k{i}", "text": texts[i % len(texts)]}) + "\n" for i in range(600)))
    cli(env, "score", str(tickets), "-o", str(tmp_path / "plain.jsonl"))

    out = tmp_path / "ray.jsonl"
    parts = tmp_path / "ray.jsonl.parts"
    args = [TRIAGE, "score", str(tickets), "--engine", "ray", "--workers", "2", "--chunk-size", "10", "-o", str(out)]
    first = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(parts.glob("part-*.jsonl")):
        assert first.poll() is None, "the backfill ended before writing a part"
        assert time.monotonic() < deadline, "no part written within 300 s"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the local Ray runtime it started
    first.wait()
    written = len(list(parts.glob("part-*.jsonl")))
    assert not out.exists()
    assert 0 < written < 60, f"{written} of 60 chunks were written before the kill"

    cli(env, *args[1:])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"k{i}" for i in range(600)]  # none missing, none twice, input order
    plain = [json.loads(line) for line in (tmp_path / "plain.jsonl").read_text().splitlines()]
    assert rows == plain
