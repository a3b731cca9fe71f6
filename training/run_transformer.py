"""Dev run: fine-tune the transformer on all shared datasets, save it, report test macro-F1 (fp32 and int8).

    .venv/bin/python -m training.run_transformer .triage/models/transformer-dev [--time-budget 1200]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.transformer import TransformerParams, fit, plot_reliability
from triage.calibration import ordinal_probabilities
from triage.data.schema import Example, label_matrix, severity_vector
from triage.data.splits import split_examples
from triage.metrics import category_report, expected_calibration_error, macro_f1, summary
from triage.models.transformer import TransformerClassifier, _TorchRuntime
from triage.settings import get_settings

logger = logging.getLogger(__name__)


def _per_source(examples: Sequence[Example], proba: np.ndarray, clf: TransformerClassifier) -> dict[str, Any]:
    """Macro-F1 (at the card's thresholds) per source, over the categories each source has positives for."""
    y = label_matrix(examples, clf.card.categories)
    sources = np.array([ex.source for ex in examples])
    out: dict[str, Any] = {}
    for source in sorted(set(sources)):
        m = sources == source
        report = category_report(y[m], proba[m], clf.card.categories, clf.card.thresholds)
        out[source] = {"macro_f1": macro_f1(report), "rows": int(m.sum()),
                       "categories": {k: round(v["f1"], 4) for k, v in report.items()}}
    return out


def evaluate(clf: TransformerClassifier, test: Sequence[Example], fp32: bool = True) -> dict[str, Any]:
    """Test metrics of the int8 model (the classifier's runtime) and, optionally, of the fp32 torch network."""
    texts = [ex.text for ex in test]
    y = label_matrix(test, clf.card.categories)
    ys = severity_vector(test, clf.card.severity_levels)
    result: dict[str, Any] = {"test_rows": len(test)}
    runtimes = [("int8", clf.runtime)]
    if fp32 and clf.net is not None:
        runtimes.append(("fp32", _TorchRuntime(clf.net)))
    for name, runtime in runtimes:
        start = time.perf_counter()
        view = TransformerClassifier(card=clf.card, tokenizer=clf.tokenizer, runtime=runtime,
                                     calibration=clf.calibration, batch_size=64)
        cat_logits, sev_logits = view.predict_logits(texts)
        seconds = time.perf_counter() - start
        pred = view.calibrate(cat_logits, sev_logits)
        raw = 1.0 / (1.0 + np.exp(-cat_logits.astype(np.float64)))
        flat = summary(y, pred.categories, clf.card.categories, ys, pred.severity, clf.card.severity_levels,
                       clf.card.thresholds)
        result[name] = {
            "macro_f1": flat["macro_f1"],
            "macro_f1_at_0.5": macro_f1(category_report(y, pred.categories, clf.card.categories)),
            "ece_before": expected_calibration_error(y, raw),
            "ece_after": expected_calibration_error(y, pred.categories),
            "severity_nll_before": _nll(ordinal_probabilities(sev_logits), ys),
            "severity_nll_after": _nll(pred.severity, ys),
            "metrics": flat,
            "per_source": _per_source(test, pred.categories, clf),
            "texts_per_second": len(texts) / seconds,
        }
    if "fp32" in result:
        result["int8_minus_fp32_macro_f1"] = result["int8"]["macro_f1"] - result["fp32"]["macro_f1"]
    return result


def _nll(p: np.ndarray, y: np.ndarray) -> float:
    known = y >= 0
    return float(-np.mean(np.log(np.maximum(p[known][np.arange(int(known.sum())), y[known]], 1e-12))))


def main(argv: Sequence[str] | None = None) -> None:
    """Train on the shared datasets, save to the given directory, print test metrics."""
    from triage.data.sources import load_all

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="directory to save the model into")
    parser.add_argument("--max-train-examples", type=int, default=TransformerParams.max_train_examples)
    parser.add_argument("--epochs", type=int, default=TransformerParams.epochs)
    parser.add_argument("--time-budget", type=float, default=TransformerParams.time_budget_s,
                        help="seconds for the optimisation loop")
    parser.add_argument("--threads", type=int, default=TransformerParams.threads)
    parser.add_argument("--results", type=Path, default=Path("results/transformer_dev.json"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    settings = get_settings()
    if settings.datasets_dir is None:
        raise SystemExit("no datasets directory: set TRIAGE_DATASETS_DIR")
    policy = settings.load_policy()
    started = time.perf_counter()
    splits = split_examples(load_all(settings.datasets_dir, policy=policy))
    params = TransformerParams(max_train_examples=args.max_train_examples, epochs=args.epochs,
                               time_budget_s=args.time_budget, threads=args.threads)
    clf = fit(splits["train"], splits["validation"], policy, params, progress=not args.no_progress)
    clf.save(args.output)
    results = {
        "model_dir": str(args.output),
        "card_extra": {k: v for k, v in clf.card.extra.items() if k not in ("reliability", "history")},
        "history": clf.card.extra["history"],
        "validation": clf.card.metrics,
        "test": evaluate(clf, splits["test"]),
        "wall_seconds": time.perf_counter() - started,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, default=str))
    plot_reliability(clf.card, args.results.with_suffix(".reliability.png"))

    test = results["test"]
    print(f"training {clf.card.extra['training_seconds']:.0f} s, fit {clf.card.extra['total_fit_seconds']:.0f} s, "
          f"wall {results['wall_seconds']:.0f} s; {clf.card.extra['train_examples_used']} examples, "
          f"stop: {clf.card.extra['stop_reason']}")
    for name in ("int8", "fp32"):
        if name in test:
            t = test[name]
            print(f"test {name}: macro-F1 {t['macro_f1']:.4f} (at 0.5: {t['macro_f1_at_0.5']:.4f}), "
                  f"ECE {t['ece_before']:.4f} -> {t['ece_after']:.4f}")
    for source, m in test["int8"]["per_source"].items():
        print(f"  {source:18s} rows {m['rows']:5d} macro-F1 {m['macro_f1']:.4f} {m['categories']}")
    print(f"thresholds: { {k: round(v, 3) for k, v in clf.card.thresholds.items()} }")
    print(f"results written to {args.results}")


if __name__ == "__main__":
    main()
