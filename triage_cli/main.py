"""The `triage` command: train, evaluate, serve, score files, and the review loop."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from triage.errors import TriageError
from triage.settings import Settings, get_settings
from triage_cli.output import make_console

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="ML-assisted triage for Trust & Safety teams.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = make_console(stderr=True)
log = logging.getLogger("triage")


class Kind(StrEnum):
    """Model kinds `train` and `retrain` accept."""

    baseline = "baseline"
    transformer = "transformer"
    combined = "combined"


KindOpt = Annotated[Kind, typer.Option("--model", help="baseline, transformer or combined")]
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
    elif kind == Kind.combined:
        from training.combined import CombinedParams as params_class
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
    out = make_console()
    out.print(_metrics_table(f"{model} on the test split", result.metrics, result.classifier.card.categories))
    out.print(_per_source_table(result.metrics))
    out.print(f"run {result.run_id}; registered {settings.mlflow.model_name} version {result.version}"
              f"{' as @champion' if result.promoted else ''}; fit {result.metrics['fit_seconds']:.1f}s; "
              f"data: {result.data_origin}")


@app.command()
def evaluate(
    alias: Annotated[str, typer.Option(help="registry alias to evaluate")] = "champion",
    labelled: Annotated[Path | None, typer.Option(help="a labelled CSV/JSONL to evaluate on instead")] = None,
    suite: Annotated[bool, typer.Option("--suite", help="run the behaviour suite instead of the test split")] = False,
    suite_file: Annotated[Path | None, typer.Option(help="suite file or directory (default: the shipped one)")] = None,
    model_dir: Annotated[Path | None, typer.Option(help="a saved classifier directory instead of the registry")] = None,
    results: Annotated[Path, typer.Option(help="where --suite writes behaviour_suite.json/.csv")] = Path("results"),
    log_mlflow: Annotated[bool, typer.Option("--mlflow", help="with --suite, also log the results to MLflow")] = False,
) -> None:
    """Evaluate a registered model on the test split of the data (or on a labelled file, or the behaviour suite)."""
    from training.evaluate import evaluate as run_eval
    from training.pipeline import load_training_data
    from triage.adapters import mlflow_registry as registry
    from triage.data.imports import read_labelled_file
    from triage.data.splits import split_examples
    from triage.models.base import LoadedModel
    from triage.models.io import load_classifier

    settings = get_settings()
    _setup(settings)
    try:
        if model_dir:
            loaded = LoadedModel(load_classifier(model_dir), str(model_dir), "local", "dir", None, {})
        else:
            loaded = registry.load_model(settings, alias)
        if suite:
            from triage_cli import suite as behaviour

            wide = Console(width=None if sys.stdout.isatty() else 200)
            behaviour.run(settings, loaded, suite_file, results, log_mlflow, wide)
            return
        policy = settings.load_policy()
        if labelled:
            examples = read_labelled_file(labelled, policy)
        else:
            examples = split_examples(load_training_data(settings)[0])["test"]
    except TriageError as err:
        raise _fail(err) from err
    metrics = run_eval(loaded.classifier, examples, policy)
    out = make_console()
    out.print(_metrics_table(f"{loaded.name} v{loaded.version} (@{alias}) on {len(examples)} examples", metrics,
                             loaded.classifier.card.categories))
    out.print(_per_source_table(metrics))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default TRIAGE_SERVING__HOST)")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="port (default TRIAGE_SERVING__PORT; 0 = any "
                                                                      "free port)")] = None,
    train_if_missing: Annotated[bool, typer.Option(help="train the default baseline when nothing is registered")
                                ] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="server processes, each with its own model")] = 1,
    engine: Annotated[str, typer.Option(help="uvicorn, or ray (Ray Serve replicas)")] = "uvicorn",
    replicas: Annotated[int, typer.Option(min=1, max=256, help="Ray Serve replicas (--engine ray)")] = 1,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (--engine ray; default: local)")] = None,
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
    h, p = host or settings.serving.host, port if port is not None else settings.serving.port
    if engine not in ("uvicorn", "ray"):
        raise typer.BadParameter(f"{engine!r}: expected uvicorn or ray", param_hint="--engine")
    if engine == "ray":
        from serving import ray_serve

        os.environ["TRIAGE_SERVING__HOST"], os.environ["TRIAGE_SERVING__PORT"] = h, str(p)
        console.print(f"serving on http://{h}:{p} with {replicas} Ray Serve replicas")
        ray_serve.run(h, p, replicas, address)
        return
    try:
        sock = listen_socket(h, p)
    except OSError as err:
        # Nothing has started yet: no model loaded, no Label Studio webhook touched.
        console.print(f"[red]error:[/red] cannot listen on {h}:{p}: {err.strerror or err}")
        raise typer.Exit(code=2) from err
    bound = int(sock.getsockname()[1])
    # The app (and the webhook it registers in Label Studio) uses the port actually bound.
    settings = settings.model_copy(update={"serving": settings.serving.model_copy(update={"host": h, "port": bound})})
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        # Each worker process builds the app from the environment: hand it the address bound here; the workers
        # share this socket.
        os.environ["TRIAGE_SERVING__HOST"], os.environ["TRIAGE_SERVING__PORT"] = h, str(bound)
        try:
            settings.load_policy()  # fail here, once, rather than in every worker
        except TriageError as err:
            sock.close()
            raise _fail(err) from err
        console.print(f"serving on http://{h}:{bound} with {workers} processes  (docs: http://{h}:{bound}/docs)")
        config = uvicorn.Config("serving.app:create_worker_app", factory=True, workers=workers,
                                log_level=settings.log_level.lower(), access_log=False, log_config=None)
        Multiprocess(config, sockets=[sock]).run()
        return
    try:
        application = create_app(settings)
    except TriageError as err:
        sock.close()
        raise _fail(err) from err
    console.print(f"serving on http://{h}:{bound}  (docs: http://{h}:{bound}/docs)")
    server = uvicorn.Server(uvicorn.Config(application, log_level=settings.log_level.lower(), access_log=False,
                                           log_config=None))
    server.run(sockets=[sock])


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (0 = any free port), bound before the app starts so a server that
    cannot bind never starts (and never re-registers a webhook)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Engine(StrEnum):
    """Where `score` runs: this process, or Ray Data (local Ray or a cluster)."""

    local = "local"
    ray = "ray"


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
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet with `text` and optional `id`", exists=True,
                                         dir_okay=False)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="output JSONL or .parquet (default: stdout)")
                   ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096)] = 64,
    alias: Annotated[str, typer.Option()] = "champion",
    engine: Annotated[Engine, typer.Option(help="local, or ray (Ray Data; resumable; needs --out)")] = Engine.local,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: a local Ray runtime)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=1024, help="Ray actors, one model each")] = 2,
    chunk_size: Annotated[int, typer.Option(min=1, max=100_000, help="tickets per resumable chunk (ray)")] = 1000,
    ray_start_timeout: Annotated[float, typer.Option(min=1.0, max=3600.0, help="seconds a local Ray runtime may "
                                                     "take to start (ray; one retry)")] = 120.0,
) -> None:
    """Score a file of tickets offline with the registered model; one JSON result per line, the API's fields."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from triage.adapters import mlflow_registry as registry
    from triage.scorer import Scorer, TicketLimits, validate_tickets
    from triage.tickets import Ticket
    from triage_cli.score import backfill, read_tickets, result_row

    settings = get_settings()
    _setup(settings)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    if engine == Engine.ray:
        if out is None:
            raise typer.BadParameter("--engine ray writes a file: give --out FILE.jsonl or FILE.parquet",
                                     param_hint="--out")
        try:
            loaded = registry.load_model(settings, alias)
            with Progress(*columns, console=console) as progress:
                task = progress.add_task("scoring (ray)", total=None)
                report = backfill(file, out, loaded, str(settings.policy) if settings.policy else None,
                                  settings.serving.max_text_chars, address, workers, chunk_size,
                                  lambda done, total: progress.update(task, completed=done, total=total),
                                  start_timeout_s=ray_start_timeout)
        except TriageError as err:
            raise _fail(err) from err
        console.print(f"scored {report.tickets} tickets with {loaded.name} v{loaded.version} on Ray "
                      f"({report.chunks} chunks, {report.resumed_chunks} already done) in {report.seconds:.1f}s "
                      f"(start-up to the first chunk {report.startup_seconds:.1f}s, the other chunks "
                      f"{report.scoring_seconds:.1f}s) -> {out}")
        return
    try:
        rows = read_tickets(file)
        loaded = registry.load_model(settings, alias)
        limits = TicketLimits(max_tickets=max(batch_size, 1), max_text_chars=settings.serving.max_text_chars)
        tickets = [Ticket(i, t, m) for i, t, m in rows]
        for start in range(0, len(tickets), batch_size):
            validate_tickets(tickets[start : start + batch_size], limits)
    except TriageError as err:
        raise _fail(err) from err
    from triage.models.examples import with_example_heads

    policy_ = settings.load_policy()
    scorer = Scorer(with_example_heads(loaded.classifier, policy_), policy_, limits)  # seeded categories too
    sink = out.open("w", encoding="utf-8") if out else sys.stdout
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("scoring", total=len(tickets))
            for start in range(0, len(tickets), batch_size):
                for item in scorer.score(tickets[start : start + batch_size], validate=False):
                    sink.write(json.dumps(result_row(item, loaded.name, loaded.version)) + "\n")
                progress.advance(task, min(batch_size, len(tickets) - start))
    finally:
        if out:
            sink.close()
    console.print(f"scored {len(tickets)} tickets with {loaded.name} v{loaded.version}"
                  + (f" -> {out}" if out else ""))


def _served_card(settings: Settings) -> tuple[Any, str]:
    """The card of the model `triage serve` would load (TRIAGE_SERVING__MODEL_DIR or @champion), and its name."""
    from triage.models.base import ModelCard

    if settings.serving.model_dir:
        return ModelCard.read(Path(settings.serving.model_dir)), str(settings.serving.model_dir)
    from triage.adapters import mlflow_registry as registry

    loaded = registry.load_model(settings)
    return loaded.classifier.card, f"{loaded.name} v{loaded.version} ({loaded.classifier.card.kind})"


@app.command()
def cascade(
    full: Annotated[str, typer.Option(help="registered version of the full model")],
    fast: Annotated[str | None, typer.Option(help="registered version of the cheap model")] = None,
    distill: Annotated[bool, typer.Option("--distill", help="instead of --fast: distil the cheap model from the "
                                          "full one (its scores on the training split) into the n-gram form")] = False,
    distill_texts: Annotated[int, typer.Option(min=0, help="with --distill: at most this many training texts "
                                               "scored by the full model (0 = all)")] = 0,
    distill_loss: Annotated[str, typer.Option(help="with --distill: 'ridge' (least squares on the full model's "
                                              "logits) or 'logistic' (cross-entropy on its probabilities)")] = "ridge",
    alias: Annotated[str | None, typer.Option(help="point this alias (e.g. challenger) at the cascade")] = None,
    min_agreement: Annotated[float, typer.Option(min=0.5, max=1.0)] = 0.98,
    max_auprc_drop: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.005,
    spare: Annotated[float, typer.Option(min=0.0, max=0.1, help="held back from the agreement target (and half of it "
                                         "from the AUPRC allowance) on validation, so the promise holds on new "
                                         "tickets")] = 0.0025,
) -> None:
    """Fit a cascade of two registered models (or of a full model and its distilled cheap model) on the validation
    split and register it."""
    from training.cascade import build
    from training.distill import DistillParams

    if (fast is None) == (not distill):
        raise typer.BadParameter("give --fast VERSION or --distill (exactly one)", param_hint="--fast / --distill")
    try:
        params = DistillParams(max_texts=distill_texts, loss=distill_loss) if distill else None
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--distill-loss") from err
    settings = get_settings()
    _setup(settings)
    try:
        result = build(settings, fast, full, alias, min_agreement, max_auprc_drop, spare,
                       params)
    except TriageError as err:
        raise _fail(err) from err
    f = result.fit
    cheap = f"v{fast}" if fast else f"distilled from v{full}"
    Console().print(f"registered {settings.mlflow.model_name} v{result.version} = cascade(fast {cheap}, full v{full}): "
                    f"{f.full_share:.1%} of validation tickets take the full path; decisions equal the full model's "
                    f"on {f.agreement:.1%}; macro-AUPRC {f.auprc_cascade:.4f} vs {f.auprc_full:.4f}")


@app.command()
def policy(
    path: Annotated[Path | None, typer.Argument(help="policy file to check (default TRIAGE_POLICY)")] = None,
    model: Annotated[bool, typer.Option(help="say which categories the served model has a head for")] = True,
) -> None:
    """Validate a policy file; print its categories, severity levels and what each category is scored by."""
    from triage.models.examples import head_status
    from triage.taxonomy import load_policy

    settings = get_settings()
    try:
        p = load_policy(path or settings.policy)
    except TriageError as err:
        raise _fail(err) from err
    out = make_console()
    out.print(f"policy {p.name} {p.version} (digest {p.digest})")
    out.print("categories: " + ", ".join(p.category_names))
    out.print("severity: " + " < ".join(p.severity_names))
    card, where = None, "no model checked (--no-model)"
    if model:
        try:
            card, where = _served_card(settings)
        except Exception as err:  # no registry, nothing registered: still report what the policy alone gives
            where = f"no model to check ({type(err).__name__}: {str(err)[:120]})"
    status = head_status(card) if card is not None else {}
    table = Table(title=f"what scores each category - model: {where}")
    for col in ("category", "scored by"):
        table.add_column(col)
    for c in p.categories:
        seeds = f"{len(c.examples)} examples, {len(c.counter_examples)} counter-examples"
        if card is not None and c.name in card.categories and c.name not in status:
            what = "trained head"
        elif status.get(c.name, {}).get("runs_on") == "light_head":
            what = f"light head ({status[c.name].get('labels')} expert labels; {seeds})"
        elif card is None and not c.examples:
            what = "its trained head, when the model has one"
        elif c.examples:
            what = f"examples only ({seeds}): similarity to the seeds, positives always reviewed"
        else:
            what = "nothing yet: no trained head and no examples (add examples: to score it)"
        table.add_row(c.name, what)
    out.print(table)


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
    marks = {"pass": "ok  ", "fail": "FAIL", "inconclusive": "??  ", "not measured": "--  "}
    for r in gate.results:
        out.print(f"  {marks.get(r.verdict, 'ok  ' if r.passed else 'FAIL')} {r.detail}", markup=False)


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
    heads_only: Annotated[bool, typer.Option("--heads-only", help="keep the champion; fit light heads for the "
                                             "policy's new (seeded) categories from expert labels")] = False,
    promote_heads: Annotated[bool, typer.Option("--promote", help="with --heads-only: make it @champion when the "
                                                "heads-only gate passes (base unchanged)")] = False,
) -> None:
    """Train a challenger on base data + expert labels, compare it with the champion, register @challenger."""
    from training.retrain import retrain as run_retrain

    settings = get_settings()
    _setup(settings)
    if heads_only:
        _retrain_heads(settings, labels, promote_heads)
        return
    try:
        result = run_retrain(settings, kind=model.value, expert=_expert_labels(labels), expert_weight=expert_weight)
    except TriageError as err:
        raise _fail(err) from err
    out = make_console()
    out.print(_comparison_table(result.comparison))
    _print_gate(out, result.comparison.gate)
    out.print(f"challenger: {settings.mlflow.model_name} v{result.challenger_version} (@challenger), "
              f"{result.n_expert} expert labels; parent run {result.parent_run_id}")


def _retrain_heads(settings: Settings, labels: Path | None, promote_heads: bool) -> None:
    from training.heads import retrain_heads

    try:
        result = retrain_heads(settings, _expert_labels(labels), promote=promote_heads)
    except TriageError as err:
        raise _fail(err) from err
    out = Console()
    table = Table(title=f"light heads in {settings.mlflow.model_name} v{result.version} (@challenger"
                        f"{', @champion' if result.promoted else ''})")
    for col in ("category", "labels", "positives", "CV precision", "positives reviewed"):
        table.add_column(col)
    for h in result.heads:
        table.add_row(h.name, str(h.n_labels), str(h.n_positives),
                      "-" if h.precision is None else f"{h.precision:.3f}", "yes" if not h.meets_target else "no")
    out.print(table)
    for name, why in result.skipped.items():
        out.print(f"not yet: {name} ({why})")
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items() if k != "total")
    out.print(f"{result.seconds['total']:.1f}s ({steps}); run {result.run_id}"
              + ("" if result.promoted else "; `triage promote` to serve it"))


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
    out = make_console()
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
    make_console().print(f"@champion: v{previous} -> v{current} (rolled back)")


def _mount_optional() -> None:
    """Sub-commands that live in their own modules."""
    try:
        from triage_cli.review import review_app
    except ImportError:  # pragma: no cover - only while the review module is absent
        return
    app.add_typer(review_app, name="review", help="Expert review in Label Studio: push, sync, status.")
    from triage_cli.decisions import decisions_app, report

    app.add_typer(decisions_app, name="decisions", help="The decision log: purge texts past retention, status.")
    app.command()(report)


_mount_optional()

if __name__ == "__main__":  # pragma: no cover
    app()
