"""`triage decisions purge|status` and `triage report`: the decision log from the command line."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from triage.decisions.analytics import Period
from triage.decisions.report import write_report
from triage.decisions.store import DecisionStore, to_utc_naive, utcnow
from triage.settings import Settings, get_settings

decisions_app = typer.Typer(help="The decision log: purge stored texts past retention, show its size.",
                            no_args_is_help=True)
console = Console(stderr=True)


def _store(settings: Settings) -> DecisionStore:
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    store = DecisionStore(settings.decisions_url)
    store.migrate()
    return store


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return to_utc_naive(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError as err:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 date or time (e.g. 2026-11-02 or 2026-11-02T09:00Z)",
                                 param_hint=name) from err


@decisions_app.command()
def purge(
    retention_days: Annotated[float | None, typer.Option(help="override TRIAGE_DECISIONS__RETENTION_DAYS")] = None,
) -> None:
    """Delete stored ticket texts older than the retention period (everything else of each decision stays)."""
    settings = get_settings()
    days = retention_days if retention_days is not None else settings.decisions.retention_days
    if days <= 0:
        raise typer.BadParameter(f"must be > 0, got {days}", param_hint="--retention-days")
    store = _store(settings)
    n = store.purge_texts(timedelta(days=days))
    typer.echo(f"purged {n} text(s) of decisions older than {days:g} days")


@decisions_app.command()
def status() -> None:
    """How many decisions the log holds, and where."""
    settings = get_settings()
    store = _store(settings)
    url = store.engine.url.render_as_string(hide_password=True)
    typer.echo(f"{store.count()} decision(s) in {url}")


def report(
    out: Annotated[Path, typer.Option("--out", help="directory for report.html and the CSV files")],
    since: Annotated[str | None, typer.Option(help="ISO-8601 start (inclusive); default: 28 days before until")] = None,
    until: Annotated[str | None, typer.Option(help="ISO-8601 end (exclusive); default: now")] = None,
    drift: Annotated[bool, typer.Option(help="compare the last 7 days with the training data (needs the "
                                             "reference GET /v1/drift caches)")] = True,
) -> None:
    """Write the escalation report for a period: report.html (self-contained) and one CSV per table."""
    settings = get_settings()
    end = _when(until, "--until") or utcnow()
    start = _when(since, "--since") or end - timedelta(days=28)
    if start >= end:
        raise typer.BadParameter(f"--since ({start:%Y-%m-%d %H:%M}) must be before --until ({end:%Y-%m-%d %H:%M})")
    store = _store(settings)
    page = write_report(store, Period(start, end), settings.load_policy(), out, drift=drift, home=settings.home)
    typer.echo(str(page))
