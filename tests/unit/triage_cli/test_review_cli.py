"""`triage review push` refuses files without ids (or namespaces them), and tables never wrap in logs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.table import Table
from typer.testing import CliRunner

from triage.models.base import LoadedModel
from triage.review.outbox import Outbox
from triage_cli.output import LOG_WIDTH, make_console


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    from triage.settings import get_settings

    monkeypatch.setenv("TRIAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__ENABLED", "true")
    # Nothing listens there: delivery fails fast and the items wait in the outbox.
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TRIAGE_LABELSTUDIO__REQUEST_TIMEOUT_S", "1")
    get_settings.cache_clear()
    yield tmp_path / "home" / "review.db"
    get_settings.cache_clear()


def test_push_refuses_a_file_without_ids_naming_its_columns(cli_env: Path, tmp_path: Path) -> None:
    from triage_cli.review import review_app

    f = tmp_path / "no-ids.csv"
    f.write_text("text,channel\nyou won a prize click here,sms\n")
    result = CliRunner().invoke(review_app, ["push", str(f)])
    assert result.exit_code == 2
    assert "no ticket id; the file has the columns 'text', 'channel'" in " ".join(result.output.split())
    assert Outbox(cli_env).counts()["waiting"] == 0


def test_push_with_namespaced_ids_queues_both_files(cli_env: Path, tmp_path: Path, tiny_loaded: LoadedModel,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from triage.adapters import mlflow_registry
    from triage_cli.review import review_app

    monkeypatch.setattr(mlflow_registry, "load_model", lambda settings, alias="champion": tiny_loaded)
    texts = ["you won a prize click here", "I will find you and hurt you", "great product thanks",
             "send me your bank password", "kill yourself loser", "buy cheap watches now"]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("text\n" + "\n".join(texts[:3]) + "\n")
    b.write_text("text\n" + "\n".join(texts[3:]) + "\n")
    outputs = [CliRunner().invoke(review_app, ["push", str(f), "--namespace-ids"]) for f in (a, b)]
    assert all(r.exit_code == 1 for r in outputs), [r.output for r in outputs]  # Label Studio is down: they wait
    assert all("0 id conflict(s)" in r.output for r in outputs)
    box = Outbox(cli_env)
    ids = [i.ticket_id for i in box.claim(100, 1)]
    assert len(ids) == len(set(ids)) == box.counts()["waiting"]
    assert {i.split(":")[0] for i in ids} <= {hashlib.sha256(f.read_bytes()).hexdigest()[:12] for f in (a, b)}


def test_tables_do_not_wrap_in_logs(capsys: pytest.CaptureFixture[str]) -> None:
    console = make_console()  # under pytest, stdout is not a terminal
    assert console.width == LOG_WIDTH
    table = Table()
    table.add_column("what")
    table.add_column("reason")
    long_reason = "reviewers disagree (adjudication waiting): reviewers split on harassment: 1 of 2 said yes"
    table.add_row("ticket-123", long_reason)
    console.print(table)
    assert any(long_reason in line for line in capsys.readouterr().out.splitlines())


def test_status_table_shows_review_health_and_agreement_per_category(cli_env: Path) -> None:
    from triage_cli.review import review_app

    result = CliRunner().invoke(review_app, ["status"])
    assert result.exit_code == 0, result.output
    for row in ("id_conflicts", "annotations_rejected", "adjudication_waiting", "escalated_tickets",
                "agreement: harassment alpha / pairwise"):
        assert row in result.output
