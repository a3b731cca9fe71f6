"""The review outbox on a full or read-only disk: every ticket is still scored, the failure shows, and the held
tickets reach Label Studio once the disk is back, each exactly once.

A real full filesystem is a 2 MB tmpfs (root only). A filesystem cannot be remounted read-only while the outbox
holds it open, so read-only at run time is SQLite's own SQLITE_READONLY (query_only); read-only at start-up is a
real read-only mount.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.unit.hardening.conftest import build_app, review_text
from triage.errors import ReviewError
from triage.models.base import LoadedModel
from triage.review.memory import InMemoryReviewBackend
from triage.review.outbox import Outbox
from triage.settings import OpsSettings, Settings
from triage.taxonomy import Policy


class FaultyOutbox(Outbox):
    """An outbox whose SQLite file behaves as on a full disk (max_page_count pinned) or a read-only one."""

    mode = "ok"

    def _conn(self) -> sqlite3.Connection:
        conn = super()._conn()
        if self.mode == "full":
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
        else:
            conn.execute("PRAGMA max_page_count = 1073741823")
        conn.execute(f"PRAGMA query_only = {int(self.mode == 'readonly')}")
        return conn


def _request(n: int, start: int = 0) -> dict:
    return {"tickets": [{"id": f"R-{i}", "text": f"{review_text()} {i}", "metadata": {"pad": "p" * 2000}}
                        for i in range(start, start + n)]}


def _delivered(client: TestClient) -> Counter[str]:
    review = client.app.state.review  # type: ignore[attr-defined]
    review.sync_now()
    backend: InMemoryReviewBackend = review.backend
    return Counter(str(t["data"]["ticket_id"]) for p in backend.projects.values() for t in p.tasks.values())


def _fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"ops": OpsSettings(spool_retry_s=0.05)})


def _wait_until(check, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _score_while_failing(client: TestClient) -> None:
    for k in range(3):
        r = client.post("/v1/score", json=_request(20, 20 * k))
        assert r.status_code == 200, r.text
        assert sum(x["route"] == "review" for x in r.json()["results"]) == 20
    # the same tickets again (a client retry): still scored, still stored once later
    assert client.post("/v1/score", json=_request(20)).status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert "review outbox failing" in ready.json()["detail"]
    assert "80 review ticket(s) held" in ready.json()["detail"]


@pytest.mark.parametrize("mode, reason", [("full", "database or disk is full"),
                                          ("readonly", "attempt to write a readonly database")])
def test_outbox_fault_emulated(settings: Settings, tiny_loaded: LoadedModel, policy: Policy, mode: str,
                               reason: str, caplog: pytest.LogCaptureFixture) -> None:
    box = FaultyOutbox(settings.home / "review.db")
    app = build_app(_fast(settings), tiny_loaded, policy, box)
    with TestClient(app) as client:
        box.mode = mode
        _score_while_failing(client)
        assert reason in client.get("/readyz").json()["detail"]
        failures = [r for r in caplog.records if "cannot take tickets" in r.getMessage()]
        assert len(failures) == 1  # one line per change of state, not per request
        assert "p" * 100 not in caplog.text and review_text() not in caplog.text
        box.mode = "ok"
        _wait_until(lambda: client.get("/readyz").json()["status"] == "ok")
        delivered = _delivered(client)
        assert set(delivered) == {f"R-{i}" for i in range(60)}
        assert max(delivered.values()) == 1
        stats = app.state.review_spool.stats()
        assert stats.failures >= 1 and stats.recovered == 80 and stats.pending == 0


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB filesystem (tmpfs; needs root, as in CI containers), unmounted afterwards."""
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    # Unbuffered: a partial last write leaves nothing in a buffer for close() to fail on (ENOSPC at close).
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


def test_outbox_on_a_real_full_filesystem(small_fs: Path, settings: Settings, tiny_loaded: LoadedModel,
                                          policy: Policy) -> None:
    box = Outbox(small_fs / "review.db")
    app = build_app(_fast(settings), tiny_loaded, policy, box)
    with TestClient(app) as client:
        filler = _fill(small_fs)
        _score_while_failing(client)
        assert "full" in client.get("/readyz").json()["detail"]
        filler.unlink()
        _wait_until(lambda: client.get("/readyz").json()["status"] == "ok")
        delivered = _delivered(client)
        assert set(delivered) == {f"R-{i}" for i in range(60)} and max(delivered.values()) == 1


def test_start_up_error_names_the_path_and_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(ReviewError) as err:
        Outbox(blocker / "review.db")
    message = str(err.value)
    assert str(blocker / "review.db") in message
    assert "TRIAGE_LABELSTUDIO__OUTBOX_PATH" in message and "writable" in message


def test_start_up_on_a_read_only_mount_names_the_path(small_fs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with pytest.raises(ReviewError, match=str(small_fs / "review.db")):
        Outbox(small_fs / "review.db")


def test_outbox_files_are_owner_only(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "review.db")
    box.set_meta("k", "v")
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    box.close()
