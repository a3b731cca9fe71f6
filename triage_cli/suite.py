"""`triage evaluate --suite`: run the behaviour suite on a model, print per-behaviour tables, write results/."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from triage.behaviour import ALL, SuiteReport, load_suite, run_suite
from triage.models.base import Classifier, LoadedModel
from triage.settings import Settings


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def behaviour_table(report: SuiteReport) -> Table:
    """Per behaviour group (all languages), per language, overall: the accuracies the issue asks for."""
    table = Table(title=f"behaviour suite: {report.model} ({len(report.results)} cases)")
    cols = ("behaviour", "lang", "must flag", "flagged", "flagged or review", "must not", "left alone",
            "clean to review", "severity ok")
    for col in cols:
        table.add_column(col, justify="left" if col in ("behaviour", "lang") else "right", no_wrap=True)
    keys = [(g, ALL) for g in report.groups] + [(ALL, lang) for lang in report.languages] + [(ALL, ALL)]
    for n, (g, lang) in enumerate(keys):
        s = report.slice(g, lang)
        sev = f"{_pct(s.severity_accuracy)} of {s.severity_cases}" if s.severity_cases else "-"
        table.add_row(g, lang, str(s.must_flag), _pct(s.flag_accuracy), _pct(s.caught_rate), str(s.must_not_flag),
                      _pct(s.clean_accuracy), _pct(s.clean_review_rate), sev,
                      end_section=n in (len(report.groups) - 1, len(keys) - 2))
    return table


def language_table(report: SuiteReport) -> Table:
    """Flag accuracy / left-alone accuracy per behaviour group and language."""
    table = Table(title="per behaviour and language: flagged (must flag) / left alone (must not)")
    table.add_column("behaviour", no_wrap=True)
    for lang in report.languages:
        table.add_column(lang, justify="right", no_wrap=True)
    for g in report.groups:
        cells = []
        for lang in report.languages:
            s = report.slice(g, lang)
            cells.append(f"{_pct(s.flag_accuracy)} of {s.must_flag} / {_pct(s.clean_accuracy)} of {s.must_not_flag}"
                         if s.must_flag + s.must_not_flag else "-")
        table.add_row(g, *cells)
    return table


def run(settings: Settings, model: Classifier | LoadedModel, suite: Path | None, results: Path,
        log_mlflow: bool, out: Console) -> SuiteReport:
    """Load and run the suite, print both tables, write results/behaviour_suite.{json,csv}, optionally log to MLflow."""
    policy = settings.load_policy()
    cases = load_suite(suite, policy)
    report = run_suite(model, cases, policy)
    out.print(behaviour_table(report))
    out.print(language_table(report))
    js, cs = report.write(results)
    out.print(f"wrote {js}, {cs} and {js.with_suffix('.md')}")
    if log_mlflow:
        from triage.adapters import mlflow_registry as registry

        tags = {"kind": "behaviour_suite", "model": report.model}
        if isinstance(model, LoadedModel):
            tags |= {"model_name": model.name, "model_version": model.version, "model_alias": model.alias}
        with registry.run(settings, name="behaviour-suite", tags=tags) as run_id:
            registry.log_metrics(report.flat_metrics())
            registry.log_dict(report.to_json(), "behaviour_suite.json")
            registry.log_text(report.to_csv(), "behaviour_suite.csv")
        out.print(f"logged to MLflow run {run_id}")
    return report
