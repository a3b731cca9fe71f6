"""`triage serve --workers 2`: two processes answer on one port; review items land once in the shared outbox."""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.api_server import free_port, running_api
from triage.decisions.recorder import in_audit_sample
from triage.models.base import Classifier
from triage.settings import DecisionsSettings

pytestmark = pytest.mark.integration


def _cmdline(process: psutil.Process) -> list[str]:
    """The process's command line; empty for one that has exited (a zombie until its parent reaps it)."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_two_workers_share_the_outbox(tmp_path: Path, tiny_classifier: Classifier) -> None:
    tiny_classifier.save(tmp_path / "model")
    outbox = tmp_path / "review.db"
    env = {**os.environ, "TRIAGE_HOME": str(tmp_path / "home"), "TRIAGE_LOG_LEVEL": "INFO",
           "TRIAGE_SERVING__MODEL_DIR": str(tmp_path / "model"), "TRIAGE_SERVING__MODEL_WORKERS": "1",
           # Review on, Label Studio down (nothing listens there): items must wait in the outbox, once each.
           "TRIAGE_LABELSTUDIO__ENABLED": "true", "TRIAGE_LABELSTUDIO__URL": f"http://127.0.0.1:{free_port()}",
           "TRIAGE_LABELSTUDIO__OUTBOX_PATH": str(outbox)}
    log = tmp_path / "serve.log"
    with running_api(env, args=["--workers", "2"], log=log) as url:
        def one(i: int) -> dict:
            r = httpx.post(f"{url}/v1/score", json={"tickets": [{"id": f"w{i}", "text": f"win cash now {i} click"}]},
                           timeout=30)
            assert r.status_code == 200, r.text
            return r.json()["results"][0]

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(120)))
        assert [r["id"] for r in results] == [f"w{i}" for i in range(120)]
        server = next(p for p in psutil.process_iter(["cmdline"])
                      if p.info["cmdline"] and "--workers" in p.info["cmdline"] and url.rsplit(":", 1)[1]
                      in p.info["cmdline"])
        workers = {c.pid for c in server.children() if "spawn_main" in " ".join(_cmdline(c))}
        assert len(workers) == 2, log.read_text()
        # uvicorn logs "Child process [pid] died" when it replaces a worker: none may be lost on the way.
        assert "Child process" not in log.read_text(), log.read_text()
        assert int((tmp_path / "review.db.lock").read_text()) in workers  # one of them delivers
    review = {r["id"] for r in results if r["route"] == "review"}
    assert review  # the tiny model sends some tickets to review
    # The decision log's random audit sample of automatic decisions is queued for review too (drained at stop).
    rate = DecisionsSettings().audit_rate
    audit = {r["id"] for r in results if r["route"] == "auto" and in_audit_sample(r["id"], rate)}
    with sqlite3.connect(outbox) as db:
        queued = [row[0] for row in db.execute("SELECT ticket_id FROM queue")]
    assert sorted(queued) == sorted(review | audit)
