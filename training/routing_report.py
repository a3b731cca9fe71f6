"""Routing report: per-category precision operating points fitted on validation, checked on the test split.

`.venv/bin/python -m training.routing_report [--model-dir DIR]` loads a saved classifier (or fits the TF-IDF
baseline on the train split, cached under <home>/cache), fits the conformal operating points on the validation
split (triage.conformal), and reports on the test split, per category: the target, the achieved precision of the
tickets asserted at the operating point, the share of predicted positives that are auto-routed, the support, and
pass / miss with the gap. Writes results/routing_report.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluate import predict_examples
from triage.conformal import (
    DEFAULT_DELTA,
    OperatingPoint,
    clopper_pearson_lower,
    fit_operating_points,
    guarded_decision,
)
from triage.data.schema import Example, label_matrix
from triage.data.splits import data_hash, split_examples
from triage.models.base import Classifier
from triage.routing import decide
from triage.settings import Settings, get_settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)

MIN_SUPPORT = 20


def baseline_classifier(settings: Settings, train: list[Example], validation: list[Example],
                        policy: Policy) -> Classifier:
    """The TF-IDF baseline fitted on the train split, cached by data, policy and parameters."""
    from training.baseline import BaselineParams, fit
    from triage.models.io import load_classifier

    params = BaselineParams()
    digest = hashlib.sha256(json.dumps(params.as_dict(), sort_keys=True).encode()).hexdigest()[:8]
    key = f"{data_hash(train)}-{policy.digest}-{digest}"
    cache = settings.home / "cache" / f"routing-baseline-{key}"
    if (cache / "classifier.json").is_file():
        log.info("baseline from cache %s", cache)
        return load_classifier(cache)
    classifier = fit(train, validation, policy, params)
    classifier.save(cache)
    return classifier


def category_rows(
    y: np.ndarray,
    p: np.ndarray,
    categories: Sequence[str],
    points: Mapping[str, OperatingPoint],
    decision_thresholds: Mapping[str, float],
    routed_auto: np.ndarray,
    policy: Policy,
    min_support: int = MIN_SUPPORT,
) -> list[dict[str, Any]]:
    """One report row per category from test labels `y` (n, C, NaN unknown), scores `p` and the routes."""
    rows = []
    for j, name in enumerate(categories):
        point = points[name]
        known = ~np.isnan(y[:, j])
        yj, pj = y[known, j], p[known, j]
        predicted = pj >= decision_thresholds[name]
        # Asserted = the model says yes (decision threshold) and the operating point admits it.
        asserted = predicted & (pj >= point.threshold) if point.threshold is not None else np.zeros_like(predicted)
        auto = asserted & routed_auto[known]
        n_asserted, n_auto = int(asserted.sum()), int(auto.sum())
        tp = int(yj[asserted].sum())
        achieved = tp / n_asserted if n_asserted else None
        auto_precision = float(yj[auto].mean()) if n_auto else None
        target = point.target_precision
        if point.threshold is None:
            best = point.best_lower_bound
            status = ("not certified: no validation positives" if best is None else
                      f"not certified: best validation bound {100 * best:.1f}% (all to review)")
        elif n_asserted < min_support:
            status = f"insufficient support ({n_asserted} < {min_support})"
        elif achieved is not None and achieved >= target:
            status = "pass"
        else:
            status = "miss"
        rows.append({
            "category": name,
            "target": target,
            "always_review": policy.category(name).always_review,
            "threshold": point.threshold,
            "validation_precision": point.expected_precision,
            "validation_lower_bound": point.precision_lower_bound,
            "validation_selected": point.selected,
            "test_known": int(known.sum()),
            "test_positives": int(yj.sum()),
            "test_predicted_positive": int(predicted.sum()),
            "test_asserted": n_asserted,
            "achieved_precision": None if achieved is None else round(achieved, 4),
            "achieved_lower_bound": None if not n_asserted else round(
                float(clopper_pearson_lower(tp, n_asserted, point.delta)), 4),
            "asserted_share_of_predicted": round(n_asserted / int(predicted.sum()), 4) if predicted.any() else None,
            "recall_at_point": round(tp / int(yj.sum()), 4) if yj.sum() else None,
            "auto_routed": n_auto,
            "auto_routed_precision": None if auto_precision is None else round(auto_precision, 4),
            "auto_share_of_predicted": round(n_auto / int(predicted.sum()), 4) if predicted.any() else None,
            "status": status,
            "gap": None if achieved is None else round(achieved - target, 4),
        })
    return rows


def _f(x: Any, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if pct else str(x)


def markdown(rows: list[dict[str, Any]], overall: Mapping[str, Any]) -> str:
    """The report as a markdown table with a short preamble."""
    lines = [
        f"Operating points fitted on the validation split ({overall['validation_rows']:,} rows), checked on the test "
        f"split ({overall['test_rows']:,} rows). Model: {overall['model']}. Clopper-Pearson level "
        f"{1 - overall['delta']:.0%}; 'enough support' = at least {overall['min_support']} test tickets asserted.",
        "",
        f"Tickets auto-routed on test: plain decide() {overall['auto_share_decide']:.1%}, with the precision gate "
        f"{overall['auto_share_guarded']:.1%}.",
        "",
        "| category | target | threshold | val. precision (lower bound) | test positives | asserted "
        "| achieved precision (lower bound) | share of predicted positives asserted | auto-routed (precision) "
        "| status | gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        th = f"{r['threshold']:.3f}" if r["threshold"] is not None else "none"
        ar = "always review" if r["always_review"] else f"{r['auto_routed']} ({_f(r['auto_routed_precision'])})"
        gap = f"{100 * r['gap']:+.1f} pts" if r["gap"] is not None else "-"
        lines.append(
            f"| {r['category']} | {_f(r['target'])} | {th} | {_f(r['validation_precision'])} "
            f"({_f(r['validation_lower_bound'])}) | {r['test_positives']} | {r['test_asserted']} | "
            f"{_f(r['achieved_precision'])} ({_f(r['achieved_lower_bound'])}) | "
            f"{_f(r['asserted_share_of_predicted'])} | {ar} | {r['status']} | {gap} |"
        )
    misses = [r for r in rows if r["status"] == "miss"]
    lines.append("")
    if misses:
        lines.append("Misses: " + "; ".join(
            f"{r['category']} achieved {_f(r['achieved_precision'])} against {_f(r['target'])} "
            f"({100 * r['gap']:+.1f} pts)" for r in misses) + ".")
    else:
        lines.append("Every category with an operating point and enough test support meets its target.")
    uncertified = [r for r in rows if r["threshold"] is None]
    if uncertified:
        lines.append("")
        listed = "; ".join(f"{r['category']} (target {_f(r['target'])}, {r['status'].split(': ', 1)[1].split(' (')[0]})"
                           for r in uncertified)
        lines.append(f"Not certified on validation, so every positive of these goes to review: {listed}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Per-category routing precision report on the test split.")
    parser.add_argument("--model-dir", type=Path, default=None, help="a saved classifier (default: fit baseline)")
    parser.add_argument("--delta", type=float, default=DEFAULT_DELTA, help="1 - confidence of the bound")
    parser.add_argument("--min-support", type=int, default=MIN_SUPPORT)
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    settings = get_settings()
    policy = settings.load_policy()
    if not settings.datasets_dir:
        print("no shared datasets directory found (set TRIAGE_DATASETS_DIR)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    from triage.data.sources import load_all

    splits = split_examples(load_all(settings.datasets_dir, policy=policy))
    if args.model_dir:
        from triage.models.io import load_classifier

        classifier = load_classifier(args.model_dir)
        model = f"{classifier.card.kind} from {args.model_dir}"
    else:
        classifier = baseline_classifier(settings, splits["train"], splits["validation"], policy)
        model = "TF-IDF baseline fitted on the train split"
    cats = list(classifier.card.categories)
    known_cats = [c for c in cats if c in policy.category_names]
    idx = [cats.index(c) for c in known_cats]

    validation, test = splits["validation"], splits["test"]
    pv = predict_examples(classifier, validation).categories[:, idx]
    pred_test = predict_examples(classifier, test)
    pt = pred_test.categories[:, idx]
    points = fit_operating_points(label_matrix(validation, known_cats), pv, known_cats, policy, args.delta)

    thresholds = {c: classifier.card.thresholds.get(c, policy.category(c).threshold) for c in known_cats}
    from triage.scorer import Scorer

    scores = Scorer(classifier, policy).to_scores(pred_test)
    plain = np.array([decide(s, policy, thresholds).route == "auto" for s in scores])
    guarded = np.array([guarded_decision(s, policy, points, thresholds).route == "auto" for s in scores])
    rows = category_rows(label_matrix(test, known_cats), pt, known_cats, points, thresholds, guarded, policy,
                         args.min_support)
    overall = {
        "model": model,
        "validation_rows": len(validation),
        "test_rows": len(test),
        "delta": args.delta,
        "min_support": args.min_support,
        "auto_share_decide": float(plain.mean()),
        "auto_share_guarded": float(guarded.mean()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    text = markdown(rows, overall)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "routing_report.json").write_text(json.dumps(
        {"overall": overall, "categories": rows, "operating_points": {k: v.to_dict() for k, v in points.items()}},
        indent=2))
    (args.results / "routing_report.md").write_text(f"# Routing report\n\n{text}\n")
    print(f"\nwrote {args.results / 'routing_report.md'} and .json ({overall['seconds']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
