"""`triage review ...`: push tickets to the Label Studio review queue, sync labels back, show the queue."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from triage.audit import AuditItem
from triage.data.schema import Example
from triage.errors import ReviewBackendUnavailable, TriageError
from triage.review.service import ReviewService, build_review_service, report_dict
from triage.settings import get_settings
from triage_cli.output import make_console

review_app = typer.Typer(help="Expert review in Label Studio: push, sync, status, export, audit.", no_args_is_help=True)
console = make_console(stderr=True)


def _service() -> ReviewService:
    import logging

    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        svc = build_review_service(settings, settings.load_policy(), serving=False)
    except TriageError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    if svc is None:
        console.print("[red]error:[/red] review is disabled (TRIAGE_LABELSTUDIO__ENABLED=false)")
        raise typer.Exit(2)
    return svc


def _deliver(svc: ReviewService, ticket_ids: Sequence[str] = ()) -> None:
    try:
        report = svc.sync_now()
    except ReviewBackendUnavailable as err:
        waiting = svc.outbox.counts()["waiting"]
        console.print(f"[yellow]Label Studio unavailable[/yellow] ({err}); {waiting} item(s) wait in "
                      f"{svc.outbox.path} and will be delivered by the next sync")
        raise typer.Exit(1) from err
    except TriageError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    console.print("this sync: " + json.dumps(report_dict(report)))
    if ticket_ids:
        # The running server may have delivered them first: say where the file's tickets are, whoever sent them.
        st = svc.outbox.states(ticket_ids)
        console.print(f"this file's review tickets: {st.get('sent', 0)} in Label Studio, {st.get('waiting', 0)} "
                      f"waiting, {st.get('rejected', 0)} refused by Label Studio")


@review_app.command()
def push(
    file: Annotated[Path | None, typer.Argument(help="CSV/JSONL of tickets to score first (`text`, optional `id`); "
                                                     "without it, only the outbox is delivered", exists=True,
                                                dir_okay=False)] = None,
    alias: Annotated[str, typer.Option(help="registry alias of the model that scores the file")] = "champion",
    batch_size: Annotated[int, typer.Option(min=1, max=256)] = 64,
    namespace_ids: Annotated[bool, typer.Option(
        "--namespace-ids", help="number rows without an `id` under a hash of the file (`<hash>:<row>`) instead "
                                "of refusing the file")] = False,
) -> None:
    """Score a file with the registered model, queue the tickets routed to review, and deliver the queue.

    A ticket is its id plus its text: a file without an `id` column is refused (or, with --namespace-ids,
    its rows get ids under the file's hash); an id already queued with another text is reported as a conflict
    and left out.
    """
    svc = _service()
    if file is not None:
        from triage.adapters import mlflow_registry as registry
        from triage.data.imports import read_tickets_file
        from triage.scorer import Scorer, TicketLimits
        from triage.tickets import Ticket

        settings = get_settings()
        try:
            rows = read_tickets_file(file, missing_ids="namespace" if namespace_ids else "refuse")
            loaded = registry.load_model(settings, alias)
        except TriageError as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(2) from err
        scorer = Scorer(loaded.classifier, svc.policy,
                        TicketLimits(max_tickets=batch_size, max_text_chars=settings.serving.max_text_chars))
        tickets = [Ticket(i, t, m) for i, t, m in rows]
        queued = review = 0
        conflicts: list[str] = []
        review_ids: list[str] = []
        for start in range(0, len(tickets), batch_size):
            try:
                scored = scorer.score(tickets[start:start + batch_size])
            except TriageError as err:
                console.print(f"[red]error:[/red] {err}")
                raise typer.Exit(2) from err
            review_ids += [s.ticket.id for s in scored if s.decision.route == "review"]
            review = len(review_ids)
            result = svc.enqueue(scored, loaded.name, loaded.version)
            queued += result.new
            conflicts += result.conflicts
        console.print(f"scored {len(tickets)} tickets with {loaded.name} v{loaded.version}: {review} need review, "
                      f"{queued} newly queued, {len(conflicts)} id conflict(s)")
        if conflicts:
            shown = ", ".join(conflicts[:20]) + (" ..." if len(conflicts) > 20 else "")
            console.print(f"[yellow]conflict:[/yellow] {len(conflicts)} id(s) already queued with another text, "
                          f"left out (a ticket is its id plus its text): {shown}")
        _deliver(svc, [t for t in review_ids if t not in set(conflicts)])
        return
    _deliver(svc)


@review_app.command()
def sync(
    pull: Annotated[bool, typer.Option(help="also fetch every annotation (safety net for missed webhooks)")] = True,
) -> None:
    """Deliver waiting items, then pull annotations from Label Studio into the label store."""
    svc = _service()
    _deliver(svc)
    if pull:
        try:
            report = svc.pull()
        except TriageError as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from err
        console.print("pulled: " + json.dumps(report_dict(report)))


@review_app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Counts: waiting, sent, labelled; reviewer agreement; last sync error."""
    svc = _service()
    st = svc.status()
    if as_json:
        typer.echo(json.dumps(st, indent=2, default=str))
        return
    table = Table(title=f"review queue ({svc.outbox.path})")
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in ("waiting", "waiting_retried", "sent", "rejected", "prediction_updates", "id_conflicts",
                "sent_now_auto_routed", "annotations", "annotations_deleted", "annotations_rejected",
                "labelled_tasks", "annotators", "adjudication_waiting", "adjudication_sent", "escalated_tickets",
                "project_id", "model_version", "policy_version", "last_error"):
        table.add_row(key, str(st[key]))
    ag = st["agreement"]
    table.add_row("agreement: shared tasks", str(ag["tasks"]))
    table.add_row("agreement: exact match", str(ag["exact_match"]))
    table.add_row("agreement: severity alpha", str(ag["severity_alpha"]))
    for name, alpha in ag["category_alpha"].items():
        table.add_row(f"agreement: {name} alpha / pairwise", f"{alpha} / {ag['category_pairwise'][name]}")
    make_console().print(table)


@review_app.command()
def export(
    out: Annotated[Path, typer.Argument(help="JSONL file of labelled examples (training-data format)")],
) -> None:
    """Write the reviewed tasks as labelled examples (one per task, majority of reviewers)."""
    svc = _service()
    n = write_examples(svc.examples(), out)
    console.print(f"wrote {n} labelled examples to {out}")


def write_examples(examples: Sequence[Example], out: Path) -> int:
    """Labelled examples as JSONL in the labelled-file format `triage.data.imports.read_labelled_file` reads."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for ex in examples:
            cats = [c for c, y in ex.labels.items() if y]
            fh.write(json.dumps({**dict(ex.meta), "text": ex.text, "categories": cats, "severity": ex.severity,
                                 "source": ex.source, "language": ex.language}, ensure_ascii=False) + "\n")
    return len(examples)


@review_app.command("connect-ml")
def connect_ml(
    url: Annotated[str | None, typer.Option(help="this API's /ml URL as Label Studio reaches it")] = None,
) -> None:
    """Connect the serving API's ML backend to the review project (hand-imported tasks get predictions)."""
    svc = _service()
    try:
        ml_id = svc.connect_ml_backend(url)
    except TriageError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from err
    console.print(f"ML backend {ml_id} connected to project {svc.outbox.get_meta('project_id')}")


@review_app.command()
def audit(
    out: Annotated[Path | None, typer.Option("--out", help="also write the audit queue as JSONL",
                                             dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines instead of a table")] = False,
    alias: Annotated[str, typer.Option(help="registry alias of the model that audits the labels")] = "champion",
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many items")] = None,
    min_per_class: Annotated[int, typer.Option(min=1, help="labelled rows of each class a category needs before "
                                                           "its labels are audited")] = 5,
) -> None:
    """Second review queue: expert labels the model confidently contradicts and tasks reviewers disagree on."""
    svc = _service()
    from triage.adapters import mlflow_registry as registry

    try:
        loaded = registry.load_model(get_settings(), alias)
        items = svc.audit_items(loaded.classifier, limit=limit, min_per_class=min_per_class)
    except TriageError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from err
    examples = svc.examples()
    by_id = {ex.meta.get("ticket_id") or f"task-{ex.meta.get('task_id', '')}": ex for ex in examples}
    older = sum((ex.meta.get("model_version") or "") != loaded.version for ex in examples)
    console.print(f"audited {len(examples)} labelled tasks with {loaded.name} v{loaded.version}: {len(items)} to "
                  "look at")
    if older:
        console.print(f"[yellow]note:[/yellow] {older} of them were labelled on another model version's tasks; if "
                      "that version's labels trained this model, its flags on them are weak (in-sample)")
    rows = [audit_row(rank, a, by_id.get(a.item_id)) for rank, a in enumerate(items, start=1)]
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        console.print(f"wrote {len(rows)} audit items to {out}")
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, ensure_ascii=False))
        return
    table = Table(title=f"label audit ({svc.outbox.path})")
    for name, justify in (("#", "right"), ("item", "left"), ("kind", "left"), ("score", "right"),
                          ("categories", "left"), ("reason", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(str(r["rank"]), r["item_id"], r["kind"], f"{r['score']:.3f}", ", ".join(r["categories"]),
                      r["reason"])
    make_console().print(table)


def audit_row(rank: int, item: AuditItem, example: Example | None) -> dict[str, Any]:
    """One audit item as a JSON-ready row, with the task's text and its current (majority) label."""
    row: dict[str, Any] = {"rank": rank, **asdict(item), "categories": list(item.categories)}
    if example is not None:
        row.update(task_id=example.meta.get("task_id"), text=example.text,
                   labelled=sorted(c for c, y in example.labels.items() if y), severity=example.severity)
    return row


@review_app.command()
def purge(
    retention_days: Annotated[float | None, typer.Option(
        help="delete done rows delivered longer ago than this (default TRIAGE_OPS__RETENTION_DAYS; 0 = none)",
        min=0)] = None,
    vacuum: Annotated[bool, typer.Option(
        help="then rewrite the file compactly (an outbox made before auto-vacuum gives freed pages back from then "
             "on); writers wait while it runs")] = False,
) -> None:
    """Remove ticket text and metadata from labelled outbox rows, and delete done rows past the retention period
    (waiting rows are kept)."""
    from triage.review.retention import purge as run_purge

    settings = get_settings()
    days = settings.ops.retention_days if retention_days is None else retention_days
    svc = _service()
    report = run_purge(svc.outbox, days)
    if vacuum:
        svc.outbox.vacuum()
    typer.echo(json.dumps({**asdict(report), "retention_days": days}))
