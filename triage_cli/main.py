"""The `triage` command: train, evaluate, serve, score files, and the review loop."""

from __future__ import annotations

import json
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from triage.errors import TriageError
from triage.settings import Settings, get_settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="ML-assisted triage for Trust & Safety teams.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)
log = logging.getLogger("triage")


class Kind(StrEnum):
    """Model kinds `train` and `retrain` accept."""

    baseline = "baseline"
    transformer = "transformer"


KindOpt = Annotated[Kind, typer.Option("--model", help="baseline or transformer")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="override one hyperparameter as name=value (value in JSON); repeatable"),
]


def _params(kind: Kind, overrides: list[str] | None) -> Any:
    """The model kind's hyperparameter dataclass with `overrides` applied (None when there are none)."""
    from dataclasses import fields

    if not overrides:
        return None
    if kind == Kind.baseline:
        from training.baseline import BaselineParams as params_class
    else:
        from training.transformer import TransformerParams as params_class  # type: ignore[assignment]
    names = sorted(f.name for f in fields(params_class))
    values: dict[str, Any] = {}
    for item in overrides:
        name, sep, raw = item.partition("=")
        if not sep or name not in names:
            raise typer.BadParameter(f"{item!r}: expected name=value, name one of {', '.join(names)}",
                                     param_hint="--param")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    try:
        return params_class(**values)
    except (TypeError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--param") from err


def _setup(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def _setup_server_logs(settings: Settings) -> None:
    from serving.observability import configure_logging

    configure_logging(settings)  # request ids, escaped messages, no ticket text in tracebacks; JSON on request


def _fail(err: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {err}")
    return typer.Exit(code=2)


def _metrics_table(title: str, metrics: dict[str, float], categories: list[str]) -> Table:
    table = Table(title=title)
    for col in ("category", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="right" if col != "category" else "left")
    for c in categories:
        if f"{c}_f1" in metrics:
            table.add_row(c, f"{metrics[f'{c}_precision']:.3f}", f"{metrics[f'{c}_recall']:.3f}",
                          f"{metrics[f'{c}_f1']:.3f}", f"{metrics[f'{c}_support']:.0f}")
    table.add_row("macro", "", "", f"{metrics.get('macro_f1', 0.0):.3f}", "")
    return table


def _per_source_table(metrics: dict[str, float]) -> Table:
    table = Table(title="test split per source")
    for col in ("source", "macro-F1", "severity acc", "severity MAE"):
        table.add_column(col)
    sources = sorted({k.split("/")[0] for k in metrics if "/" in k})
    for s in sources:
        def get(key: str, source: str = s) -> str:
            v = metrics.get(f"{source}/{key}")
            return "-" if v is None else f"{v:.3f}"
        table.add_row(s, get("macro_f1"), get("severity_accuracy"), get("severity_mae"))
    return table


@app.command()
def train(
    model: KindOpt = Kind.baseline,
    alias: Annotated[str | None, typer.Option(help="also point this alias (e.g. challenger) here")] = None,
    promote_if_first: Annotated[bool, typer.Option(help="make it @champion when no champion exists")] = True,
    param: ParamOpt = None,
) -> None:
    """Train on the shared datasets (or the shipped examples), log to MLflow, register the model."""
    from training.pipeline import train as run_training

    params = _params(model, param)
    settings = get_settings()
    _setup(settings)
    try:
        result = run_training(settings, kind=model.value, params=params, promote_if_first=promote_if_first,
                              alias=alias)
    except TriageError as err:
        raise _fail(err) from err
    out = Console()
    out.print(_metrics_table(f"{model} on the test split", result.metrics, result.classifier.card.categories))
    out.print(_per_source_table(result.metrics))
    out.print(f"run {result.run_id}; registered {settings.mlflow.model_name} version {result.version}"
              f"{' as @champion' if result.promoted else ''}; fit {result.metrics['fit_seconds']:.1f}s; "
              f"data: {result.data_origin}")


@app.command()
def evaluate(
    alias: Annotated[str, typer.Option(help="registry alias to evaluate")] = "champion",
    labelled: Annotated[Path | None, typer.Option(help="a labelled CSV/JSONL to evaluate on instead")] = None,
) -> None:
    """Evaluate a registered model on the test split of the data (or on a labelled file)."""
    from training.evaluate import evaluate as run_eval
    from training.pipeline import load_training_data
    from triage.adapters import mlflow_registry as registry
    from triage.data.imports import read_labelled_file
    from triage.data.splits import split_examples

    settings = get_settings()
    _setup(settings)
    try:
        loaded = registry.load_model(settings, alias)
        policy = settings.load_policy()
        if labelled:
            examples = read_labelled_file(labelled, policy)
        else:
            examples = split_examples(load_training_data(settings)[0])["test"]
    except TriageError as err:
        raise _fail(err) from err
    metrics = run_eval(loaded.classifier, examples, policy)
    out = Console()
    out.print(_metrics_table(f"{loaded.name} v{loaded.version} (@{alias}) on {len(examples)} examples", metrics,
                             loaded.classifier.card.categories))
    out.print(_per_source_table(metrics))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default TRIAGE_SERVING__HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default TRIAGE_SERVING__PORT)")] = None,
    train_if_missing: Annotated[bool, typer.Option(help="train the default baseline when nothing is registered")
                                ] = False,
) -> None:
    """Serve the scoring API with the @champion model."""
    import uvicorn

    from serving.app import create_app

    settings = get_settings()
    _setup_server_logs(settings)
    if train_if_missing:
        from training.pipeline import train as run_training
        from triage.adapters import mlflow_registry as registry

        client = registry.configure(settings)
        if registry.alias_version(client, settings.mlflow.model_name, registry.CHAMPION) is None:
            console.print("no @champion registered: training the default baseline first")
            result = run_training(settings, kind="baseline")
            console.print(f"trained {settings.mlflow.model_name} v{result.version}: "
                          f"test macro-F1 {result.metrics['macro_f1']:.3f}")
    try:
        application = create_app(settings)
    except TriageError as err:
        raise _fail(err) from err
    h, p = host or settings.serving.host, port or settings.serving.port
    console.print(f"serving on http://{h}:{p}  (docs: http://{h}:{p}/docs)")
    uvicorn.run(application, host=h, port=p, log_level=settings.log_level.lower(), access_log=False, log_config=None)


@app.command("export-model")
def export_model(
    directory: Annotated[Path, typer.Argument(help="empty or new directory to write the classifier into")],
    alias: Annotated[str, typer.Option(help="registry alias to export")] = "champion",
) -> None:
    """Write the registry's model as a plain directory (no MLflow paths), to mount read-only or bake into an image
    (TRIAGE_SERVING__MODEL_DIR)."""
    from triage.adapters import mlflow_registry as registry

    settings = get_settings()
    _setup(settings)
    if directory.exists() and any(directory.iterdir()):
        raise _fail(ValueError(f"{directory} is not empty"))
    try:
        loaded = registry.load_model(settings, alias)
    except TriageError as err:
        raise _fail(err) from err
    directory.mkdir(parents=True, exist_ok=True)
    loaded.classifier.save(directory)
    console.print(f"exported {loaded.name} version {loaded.version} (@{alias}) to {directory}")


@app.command()
def score(
    file: Annotated[Path, typer.Argument(help="CSV or JSONL with `text` and optional `id`", exists=True,
                                         dir_okay=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output JSONL (default: stdout)")] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096)] = 64,
    alias: Annotated[str, typer.Option()] = "champion",
) -> None:
    """Score a file of tickets offline with the registered model; one JSON result per line."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from triage.adapters import mlflow_registry as registry
    from triage.data.imports import read_tickets_file
    from triage.scorer import Scorer, TicketLimits, validate_tickets
    from triage.tickets import Ticket

    settings = get_settings()
    _setup(settings)
    try:
        rows = read_tickets_file(file)
        loaded = registry.load_model(settings, alias)
        limits = TicketLimits(max_tickets=max(batch_size, 1), max_text_chars=settings.serving.max_text_chars)
        tickets = [Ticket(i, t, m) for i, t, m in rows]
        for start in range(0, len(tickets), batch_size):
            validate_tickets(tickets[start : start + batch_size], limits)
    except TriageError as err:
        raise _fail(err) from err
    scorer = Scorer(loaded.classifier, settings.load_policy(), limits)
    sink = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        with Progress(*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console) as progress:
            task = progress.add_task("scoring", total=len(tickets))
            for start in range(0, len(tickets), batch_size):
                for item in scorer.score(tickets[start : start + batch_size], validate=False):
                    d = item.decision
                    sink.write(json.dumps({
                        "id": item.ticket.id, "categories": dict(item.scores.categories), "category": d.category,
                        "severity": {"level": d.severity, "scores": dict(item.scores.severity)},
                        "priority": d.priority, "route": d.route, "reasons": list(d.reasons),
                        "model": {"name": loaded.name, "version": loaded.version},
                    }) + "\n")
                progress.advance(task, min(batch_size, len(tickets) - start))
    finally:
        if out:
            sink.close()
    console.print(f"scored {len(tickets)} tickets with {loaded.name} v{loaded.version}"
                  + (f" -> {out}" if out else ""))


@app.command()
def policy(
    path: Annotated[Path | None, typer.Argument(help="policy file to check (default TRIAGE_POLICY)")] = None,
) -> None:
    """Validate a policy file and print its categories and severity levels."""
    from triage.taxonomy import load_policy

    try:
        p = load_policy(path or get_settings().policy)
    except TriageError as err:
        raise _fail(err) from err
    out = Console()
    out.print(f"policy {p.name} {p.version} (digest {p.digest})")
    out.print("categories: " + ", ".join(p.category_names))
    out.print("severity: " + " < ".join(p.severity_names))


def _comparison_table(comparison: Any) -> Table:
    table = Table(title=f"champion v{comparison.champion_version} vs challenger v{comparison.challenger_version}")
    for col in ("metric", "champion", "challenger"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    keys = sorted(set(comparison.champion) | set(comparison.challenger))
    for key in keys:
        if key.endswith(("_support", "/n", "_known")):
            continue
        a, b = comparison.champion.get(key), comparison.challenger.get(key)
        table.add_row(key, "-" if a is None else f"{a:.3f}", "-" if b is None else f"{b:.3f}")
    return table


def _print_gate(out: Console, gate: Any) -> None:
    out.print(f"promotion gate: {'[green]PASSED[/green]' if gate.passed else '[red]REFUSED[/red]'}")
    for r in gate.results:
        mark = "ok  " if r.passed else "FAIL"
        out.print(f"  {mark} {r.detail}")


def _expert_labels(labels: Path | None) -> list | None:
    if labels is None:
        return None
    from triage.data.imports import read_labelled_file, read_labelstudio_export

    policy = get_settings().load_policy()
    if labels.suffix == ".json":
        return read_labelstudio_export(labels, policy)
    return read_labelled_file(labels, policy)


@app.command()
def retrain(
    model: KindOpt = Kind.baseline,
    labels: Annotated[Path | None, typer.Option(help="expert labels (CSV/JSONL or a Label Studio JSON export); "
                                                     "default: the review loop's label store")] = None,
    expert_weight: Annotated[float, typer.Option(min=0.01, help="weight of an expert label vs a source label")] = 2.0,
) -> None:
    """Train a challenger on base data + expert labels, compare it with the champion, register @challenger."""
    from training.retrain import retrain as run_retrain

    settings = get_settings()
    _setup(settings)
    try:
        result = run_retrain(settings, kind=model.value, expert=_expert_labels(labels), expert_weight=expert_weight)
    except TriageError as err:
        raise _fail(err) from err
    out = Console()
    out.print(_comparison_table(result.comparison))
    _print_gate(out, result.comparison.gate)
    out.print(f"challenger: {settings.mlflow.model_name} v{result.challenger_version} (@challenger), "
              f"{result.n_expert} expert labels; parent run {result.parent_run_id}")


@app.command()
def promote(
    version: Annotated[str | None, typer.Option(help="version to promote (default: @challenger)")] = None,
    force: Annotated[bool, typer.Option(help="promote even if the gate refuses (needs --reason)")] = False,
    reason: Annotated[str, typer.Option(help="why; recorded on the model version")] = "",
    by: Annotated[str | None, typer.Option(help="who; default: the current user")] = None,
    labels: Annotated[Path | None, typer.Option(help="expert labels for the expert slice")] = None,
) -> None:
    """Move @champion to the challenger when the promotion gate passes."""
    from training.retrain import promote as run_promote

    settings = get_settings()
    _setup(settings)
    try:
        outcome = run_promote(settings, version=version, force=force, reason=reason, by=by,
                              expert=_expert_labels(labels))
    except (TriageError, ValueError) as err:
        raise _fail(err) from err
    out = Console()
    if outcome.comparison is not None:
        _print_gate(out, outcome.comparison.gate)
    if not outcome.promoted:
        out.print(f"[red]refused[/red]: v{outcome.version} stays @challenger; @champion stays v{outcome.previous}. "
                  "Use --force --reason '...' to override (recorded).")
        raise typer.Exit(code=1)
    forced = " (FORCED, recorded)" if outcome.forced else ""
    out.print(f"@champion: v{outcome.previous} -> v{outcome.version}{forced}")


@app.command()
def rollback(
    reason: Annotated[str, typer.Option(help="why; recorded on the model version")] = "",
    by: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Point @champion back at the previous champion."""
    from training.retrain import rollback as run_rollback

    settings = get_settings()
    _setup(settings)
    try:
        previous, current = run_rollback(settings, reason=reason, by=by)
    except TriageError as err:
        raise _fail(err) from err
    Console().print(f"@champion: v{previous} -> v{current} (rolled back)")


def _mount_optional() -> None:
    """Sub-commands that live in their own modules."""
    try:
        from triage_cli.review import review_app
    except ImportError:  # pragma: no cover - only while the review module is absent
        return
    app.add_typer(review_app, name="review", help="Expert review in Label Studio: push, sync, status.")


_mount_optional()

if __name__ == "__main__":  # pragma: no cover
    app()
