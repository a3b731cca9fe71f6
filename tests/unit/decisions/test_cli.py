"""`triage report` and `triage decisions purge` from the command line."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.unit.decisions.synthetic import START, fill
from tests.unit.review.conftest import scored
from triage.decisions.recorder import Recorder
from triage.decisions.store import DecisionStore, utcnow
from triage.settings import DecisionsSettings, get_settings
from triage.taxonomy import Policy
from triage_cli.main import app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_report_command(home: Path, policy: Policy, tmp_path: Path) -> None:
    store = DecisionStore(f"sqlite:///{home / 'decisions.db'}")
    store.migrate()
    until = fill(store, policy, n=300, weeks=2)
    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["report", "--since", START.date().isoformat(), "--until", until.isoformat(),
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert (out / "report.html").is_file() and (out / "volume.csv").read_text().count("\n") > 10
    bad = CliRunner().invoke(app, ["report", "--since", "yesterday", "--out", str(out)])
    assert bad.exit_code == 2 and "not an ISO-8601 date" in bad.output
    rev = CliRunner().invoke(app, ["report", "--since", "2026-11-10", "--until", "2026-11-01", "--out", str(out)])
    assert rev.exit_code == 2 and "must be before" in rev.output


def test_purge_command(home: Path) -> None:
    store = DecisionStore(f"sqlite:///{home / 'decisions.db'}")
    store.migrate()
    rec = Recorder(store, DecisionsSettings(store_text=True), "p")
    rec.record([scored("old", 0.4)], "m", "1", None, utcnow() - timedelta(days=40))
    rec.record([scored("new", 0.4)], "m", "1", None, utcnow() - timedelta(days=2))
    rec.flush()
    r = CliRunner().invoke(app, ["decisions", "purge"])
    assert r.exit_code == 0 and "purged 1 text(s) of decisions older than 30 days" in r.output
    assert store.for_ticket("old")[0]["text"] is None and store.for_ticket("new")[0]["text"] == "text of new"
    assert "2 decision(s)" in CliRunner().invoke(app, ["decisions", "status"]).output
