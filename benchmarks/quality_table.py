"""Quality table: baseline, transformer and combined models (any registered or saved ones) on the same test split.

Usage:
  .venv/bin/python benchmarks/quality_table.py [--aliases champion challenger] [--versions 3 5]
      [--model-dir combined=/path/to/saved/model ...] [--suite PATH] [--out results/quality_table]

Every model is scored on the test split of the training data (training.pipeline.load_training_data, split by
triage.data.splits.split_examples), and a transformer also on the PyTorch fp32 path (its int8 vs fp32 twin). The
table holds per-category AUPRC and F1, the macro-AUPRC of the six harm categories on the openai_moderation test
rows, macro-AUPRC / macro-F1 per source and per language, severity accuracy and MAE, ECE, and the behaviour suite
per behaviour (triage.behaviour). Unknown labels are left out of every figure (triage.quality). Prints Markdown,
writes results/quality_table.{md,json} and logs both to MLflow as a `quality-table` run.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.evaluate import predict_examples
from training.pipeline import load_training_data
from triage.adapters import mlflow_registry as registry
from triage.behaviour import SuiteReport, comparison_markdown, load_suite, run_suite
from triage.data.schema import Example, label_matrix, severity_vector
from triage.data.splits import split_examples
from triage.errors import ModelNotFoundError
from triage.models.base import Classifier
from triage.quality import quality_metrics
from triage.settings import Settings, get_settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
FOCUS_SOURCE = "openai_moderation"
FOCUS_CATEGORIES = ("sexual", "hate", "violence", "harassment", "self_harm", "child_safety")
DEFAULT_ALIASES = ("champion", "challenger")


@dataclass(frozen=True)
class Candidate:
    """A model to measure, with the label its row carries; `twin` marks an fp32 twin (metrics only, no suite)."""

    label: str
    classifier: Classifier
    twin: bool = False


def _fp32_twin(classifier: Classifier) -> Classifier | None:
    """The same transformer weights on the PyTorch fp32 path (None for other kinds)."""
    if classifier.card.kind != "transformer":
        return None
    from triage.models.transformer import TransformerClassifier

    tmp = Path(tempfile.mkdtemp(prefix="fp32-"))
    classifier.save(tmp)
    return TransformerClassifier.load(tmp, backend="torch")


def parse_model_dirs(values: Sequence[str]) -> dict[str, Path]:
    """`NAME=DIR` pairs from the command line; ValueError naming a malformed or repeated one."""
    out: dict[str, Path] = {}
    for value in values:
        name, sep, directory = value.partition("=")
        if not sep or not name.strip() or not directory.strip():
            raise ValueError(f"--model-dir {value!r}: expected NAME=DIR, e.g. combined=/tmp/models/combined")
        if name.strip() in out:
            raise ValueError(f"--model-dir: name {name.strip()!r} given twice")
        out[name.strip()] = Path(directory.strip())
    return out


def load_candidates(settings: Settings, aliases: Sequence[str] | None, versions: Sequence[str],
                    model_dirs: Mapping[str, Path], twins: bool = True) -> list[Candidate]:
    """The models named on the command line; with none named, @champion and @challenger when registered.

    A model named explicitly that cannot be loaded raises ModelNotFoundError; a missing default alias is skipped.
    """
    from triage.models.io import load_classifier

    explicit = aliases is not None or bool(versions) or bool(model_dirs)
    found: list[tuple[str, Classifier]] = []
    for alias in (aliases if aliases is not None else ([] if explicit else DEFAULT_ALIASES)):
        try:
            loaded = registry.load_model(settings, alias)
        except ModelNotFoundError:
            if explicit:
                raise
            log.warning("no model registered as @%s; left out of the table", alias)
            continue
        found.append((f"{loaded.classifier.card.kind} v{loaded.version} (@{alias})", loaded.classifier))
    for version in versions:
        loaded = registry.load_version(settings, version)
        found.append((f"{loaded.classifier.card.kind} v{loaded.version}", loaded.classifier))
    for name, directory in model_dirs.items():
        classifier = load_classifier(directory)
        found.append((f"{classifier.card.kind} ({name})", classifier))
    out: list[Candidate] = []
    for label, classifier in found:
        int8 = classifier.card.kind == "transformer"
        out.append(Candidate(label + (" int8" if int8 else ""), classifier))
        twin = _fp32_twin(classifier) if twins else None
        if twin is not None:
            out.append(Candidate(label + " fp32", twin, twin=True))
    return out


def measure(classifier: Classifier, test: Sequence[Example], policy: Policy) -> dict[str, Any]:
    """The quality figures of one classifier on the test examples (see triage.quality.quality_metrics)."""
    card = classifier.card
    cats = [c for c in card.categories if c in policy.category_names]
    idx = [card.categories.index(c) for c in cats]
    pred = predict_examples(classifier, test)
    thresholds = {c: card.thresholds.get(c, policy.category(c).threshold) for c in cats}
    return quality_metrics(
        label_matrix(test, cats), pred.categories[:, idx], cats, thresholds,
        severity_vector(test, card.severity_levels), pred.severity, card.severity_levels,
        [ex.source for ex in test], [ex.language for ex in test], FOCUS_SOURCE, FOCUS_CATEGORIES,
    )


def _f(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1),
            *("| " + " | ".join(r) + " |" for r in rows)]


def markdown(results: Mapping[str, Mapping[str, Any]], suite: Sequence[SuiteReport], note: str) -> str:
    """The whole report as Markdown: summary, per category, per source, per language, behaviour suite."""
    models = list(results)
    suite_by = {r.model: r.slice() for r in suite}
    summary = []
    for label, m in results.items():
        sev = m["severity"]
        s = suite_by.get(label)
        summary.append([label, _f(m["macro_auprc"]), _f(m["macro_f1"]), _f(m["focus"]["macro_auprc"]),
                        _f(sev.get("severity_accuracy")), _f(sev.get("severity_mae")),
                        _f(sev.get("severity_recall_high")), _f(sev.get("severity_recall_critical")), _f(m["ece"]),
                        "-" if s is None else _f(s.flag_accuracy), "-" if s is None else _f(s.clean_accuracy)])
    lines = ["## Summary", "", *_table(
        ["model", "macro-AUPRC", "macro-F1", f"{FOCUS_SOURCE} macro-AUPRC (6 harm categories)", "severity acc",
         "severity MAE", "high recall (>=)", "critical recall (>=)", "ECE", "suite: flagged (must flag)",
         "suite: left alone (must not)"], summary)]
    first = next(iter(results.values()), None)
    cats = list(first["categories"]) if first else []
    lines += ["", "## Per category (all test rows where the label is known): AUPRC / F1", ""]
    lines += _table(["category", "positives / known", *models], [
        [c, f"{first['categories'][c]['positives']:.0f} / {first['categories'][c]['known']:.0f}" if first else "-",
         *(f"{_f(m['categories'].get(c, {}).get('auprc'))} / {_f(m['categories'].get(c, {}).get('f1'))}"
           for m in results.values())] for c in cats])
    focus = [c for c in FOCUS_CATEGORIES if first and c in first["focus"]["categories"]]
    lines += ["", f"## {FOCUS_SOURCE} test rows: AUPRC per harm category", ""]
    lines += _table(["category", *models], [[c, *(_f(m["focus"]["categories"][c]["auprc"]) for m in results.values())]
                                            for c in focus])
    for title, key in (("source", "by_source"), ("language", "by_language")):
        keys = sorted({k for m in results.values() for k in m[key]})
        lines += ["", f"## Per {title}: macro-AUPRC / macro-F1 (categories the {title} labels)", ""]
        lines += _table([title, "rows", *models], [
            [k, f"{next(m[key][k]['rows'] for m in results.values() if k in m[key]):,}",
             *(f"{_f(m[key].get(k, {}).get('macro_auprc'))} / {_f(m[key].get(k, {}).get('macro_f1'))}"
               for m in results.values())] for k in keys])
    if suite:
        lines += ["", "## Behaviour suite per behaviour: flagged (must flag) / left alone (must not)", "",
                  comparison_markdown(suite).rstrip()]
    lines += ["", note]
    return "\n".join(lines) + "\n"


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")


def headline_metrics(results: Mapping[str, Mapping[str, Any]], suite: Sequence[SuiteReport]) -> dict[str, float]:
    """Flat `<model>.<metric>` numbers for MLflow (defined ones only)."""
    out: dict[str, float] = {}
    for label, m in results.items():
        flat = {"macro_auprc": m["macro_auprc"], "macro_f1": m["macro_f1"], "ece": m["ece"],
                f"{FOCUS_SOURCE}.macro_auprc": m["focus"]["macro_auprc"], **m["severity"],
                **{f"{c}.auprc": v["auprc"] for c, v in m["categories"].items()},
                **{f"{c}.f1": v["f1"] for c, v in m["categories"].items()}}
        out.update({f"{_slug(label)}.{k}": float(v) for k, v in flat.items() if v is not None})
    for report in suite:
        s = report.slice()
        for k, v in (("suite.flag_accuracy", s.flag_accuracy), ("suite.clean_accuracy", s.clean_accuracy)):
            if v is not None:
                out[f"{_slug(report.model)}.{k}"] = float(v)
    return out


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(description="Quality table of registered or saved models on the test split.")
    parser.add_argument("--aliases", nargs="*", default=None, help="registry aliases (default: champion challenger)")
    parser.add_argument("--versions", nargs="*", default=[], help="registered versions")
    parser.add_argument("--model-dir", action="append", default=[], metavar="NAME=DIR",
                        help="a saved classifier directory (repeatable)")
    parser.add_argument("--suite", type=Path, default=None, help="behaviour suite file or directory (default: shipped)")
    parser.add_argument("--no-suite", action="store_true", help="skip the behaviour suite")
    parser.add_argument("--no-twin", action="store_true", help="skip the fp32 twin of transformers")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quality_table")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    settings = settings or get_settings()
    policy = settings.load_policy()
    try:
        candidates = load_candidates(settings, args.aliases, args.versions, parse_model_dirs(args.model_dir),
                                     twins=not args.no_twin)
    except (ModelNotFoundError, ValueError) as err:
        print(f"quality_table: {err}", file=sys.stderr)
        return 2
    if not candidates:
        print("quality_table: no model to measure (register one, or pass --model-dir NAME=DIR)", file=sys.stderr)
        return 2
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels):
        print(f"quality_table: two models share a label: {labels}", file=sys.stderr)
        return 2
    examples, origin = load_training_data(settings)
    test = split_examples(examples)["test"]
    results = {c.label: measure(c.classifier, test, policy) for c in candidates}
    suite: list[SuiteReport] = []
    if not args.no_suite:
        cases = load_suite(args.suite, policy)
        suite = [run_suite(c.classifier, cases, policy, name=c.label) for c in candidates if not c.twin]
    counts = Counter(ex.source for ex in test)
    note = (f"Test split: {len(test):,} examples from {origin} ("
            + ", ".join(f"{s} {n:,}" for s, n in sorted(counts.items())) + "). AUPRC = average precision over rows "
            "where the label is known, only where a slice has known positives and negatives; macro = mean over "
            "the categories where it is defined.")
    text = markdown(results, suite, note)
    payload = {"test_examples": len(test), "data_origin": origin, "test_sources": dict(counts), "models": results,
               "suite": {r.model: r.rows() for r in suite}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    with registry.run(settings, name="quality-table", tags={"kind": "report"}):
        registry.log_metrics(headline_metrics(results, suite))
        registry.log_dict(payload, "quality_table.json")
        registry.log_text(text, "quality_table.md")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
