"""Routing report: both promises of the routing per category on the test split, and the review work they cost.

`.venv/bin/python -m training.routing_report [--model-dir DIR | --alias champion | --version N]` loads a saved or
registered classifier (or fits the TF-IDF baseline on the train split, cached under <home>/cache), routes the test
split (training.pipeline.load_training_data + split_examples) with triage.scorer.Scorer (the card's precision
operating points, auto-clear points and severity guard when it carries them) and reports, per category:
- the precision of the tickets asserted at the operating point (from the card, else fitted on validation) and of
  those auto-routed, against the policy's target_precision;
- the share of violating texts auto-cleared (positive, routed auto, not flagged for the category) against the
  policy's max_auto_clear_miss, with a Clopper-Pearson upper bound; categories with too few test positives are
  named, not judged;
and the recall of high/critical texts (reviewed or escalated) against 1 - routing.max_severe_miss, and the share of
all texts and of clean texts sent to review, overall and per source. Writes results/routing_report.{json,md} and
logs a `routing-report` MLflow run.
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
from training.pipeline import load_training_data
from triage.conformal import (
    DEFAULT_DELTA,
    ClearPoint,
    OperatingPoint,
    clear_points_from_card,
    clopper_pearson_lower,
    first_severe_level,
    fit_operating_points,
    fit_routing_points,
    points_from_card,
)
from triage.data.schema import Example, label_matrix, severity_vector
from triage.data.splits import Split, data_hash, split_examples
from triage.errors import ModelNotFoundError
from triage.models.base import Classifier
from triage.quality import auto_clear_miss, review_causes, review_shares, severe_recall
from triage.routing import decide
from triage.scorer import Scorer
from triage.settings import Settings, get_settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)

MIN_SUPPORT = 20
MIN_POSITIVES = 50
MAX_REVIEW_SHARE = 0.40


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
        f"Operating points {overall.get('points_origin', 'fitted on the validation split')}, checked on the test "
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


def clear_rows(y: np.ndarray, auto: np.ndarray, flagged: np.ndarray, categories: Sequence[str], policy: Policy,
               clear: Mapping[str, ClearPoint], delta: float,
               min_positives: int = MIN_POSITIVES) -> list[dict[str, Any]]:
    """The auto-clear promise per category on test: share of its violating texts auto-cleared vs the policy.

    `y` (n, C) NaN unknown; `auto` (n,) route == auto; `flagged` (n, C) the category is asserted by the decision.
    Status on the achieved share: pass / miss, or 'insufficient test positives' below `min_positives`.
    """
    rows = []
    for j, name in enumerate(categories):
        target = policy.category(name).max_auto_clear_miss
        m = auto_clear_miss(y[:, j], auto, flagged[:, j], delta)
        n = int(m["positives"] or 0)
        share = m["share"]
        if n < min_positives:
            status = f"insufficient test positives ({n} < {min_positives})"
        else:
            status = "pass" if share is not None and share <= target else "miss"
        point = clear.get(name)
        rows.append({
            "category": name, "target": target, **m, "status": status,
            "bound_within_target": None if m["upper_bound"] is None else bool(m["upper_bound"] <= target),
            "clear_threshold": None if point is None else point.threshold,
            "clear_certified": None if point is None else point.certified,
        })
    return rows


def severity_rows(ranks: np.ndarray, auto: np.ndarray, predicted: np.ndarray, policy: Policy, delta: float,
                  min_positives: int = MIN_POSITIVES) -> list[dict[str, Any]]:
    """Recall (escalated or reviewed) of the severe texts on test, all together and per severe level, vs
    1 - routing.max_severe_miss. `ranks` (n,) -1 unknown, `predicted` (n,) the decision's severity rank."""
    first = first_severe_level(policy)
    target = 1.0 - policy.routing.max_severe_miss
    names = policy.severity_names
    slices: list[tuple[str, np.ndarray]] = [(f"{names[first]} or worse", np.asarray(ranks))]
    slices += [(names[k], np.where(np.asarray(ranks) == k, k, -1)) for k in range(first, len(names))]
    rows = []
    for label, r in slices:
        m = severe_recall(r, auto, predicted, first, delta)
        n = int(m["severe"] or 0)
        if n < min_positives:
            status = f"insufficient test positives ({n} < {min_positives})"
        else:
            status = "pass" if m["recall"] is not None and m["recall"] >= target else "miss"
        rows.append({"severity": label, "target_recall": round(target, 6), **m, "status": status})
    return rows


def workload_markdown(work: Mapping[str, Any], max_review_share: float) -> list[str]:
    """The review workload lines: overall, then per source."""
    o = work["overall"]
    share = o["review_share"] or 0.0
    lines = [f"All test texts sent to review: {_f(o['review_share'])} of {o['rows']:,} (target at most "
             f"{_f(max_review_share)}: {'pass' if share <= max_review_share else 'miss'}); clean texts (no known "
             f"positive) sent to review: {_f(o['clean_review_share'])} of {o['clean_rows']:,}.", "",
             "| source | rows | sent to review | clean rows | clean sent to review |", "|---|---:|---:|---:|---:|"]
    for key, w in work["by_key"].items():
        lines.append(f"| {key} | {w['rows']:,} | {_f(w['review_share'])} | {w['clean_rows']:,} | "
                     f"{_f(w['clean_review_share'])} |")
    return lines


def causes_markdown(causes: list[dict[str, Any]]) -> list[str]:
    """What sends clean texts to review, per cause (a category's rules, or the severity rules)."""
    if not causes:
        return []
    lines = ["#### What sends clean texts to review", "",
             f"Of the {causes[0]['clean_rows']:,} clean test texts: the share each cause holds back (a text may have "
             "several), and the share it alone holds back (what the review load would lose if that cause cleared "
             "them).", "", "| cause | clean texts held back | held back by it alone |", "|---|---:|---:|"]
    lines += [f"| {c['cause']} | {_f(c['held_share'])} | {_f(c['alone_share'])} |" for c in causes]
    return lines


def promises_markdown(clears: list[dict[str, Any]], severe: list[dict[str, Any]], delta: float) -> list[str]:
    """The auto-clear and severity tables."""
    lines = [f"### Auto-cleared violating texts (positive, routed auto, not flagged for the category); upper bound "
             f"at {1 - delta:.0%}", "",
             "| category | target (max share) | clear threshold | test positives | auto-cleared | share | upper bound "
             "| status |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in clears:
        th = "-" if r["clear_threshold"] is None else (
            f"{r['clear_threshold']:.3f}" + ("" if r["clear_certified"] else " (not certified)"))
        lines.append(f"| {r['category']} | {_f(r['target'])} | {th} | {r['positives']} | {r['auto_cleared']} | "
                     f"{_f(r['share'])} | {_f(r['upper_bound'])} | {r['status']} |")
    short = [r["category"] for r in clears if r["status"].startswith("insufficient")]
    if short:
        lines += ["", "Too few test positives to judge: " + ", ".join(short) + "."]
    lines += ["", f"### Severe texts escalated or reviewed (recall); lower bound at {1 - delta:.0%}", "",
              "| severity | target recall | test texts | caught | recall | lower bound | status |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for r in severe:
        lines.append(f"| {r['severity']} | {_f(r['target_recall'])} | {r['severe']} | {r['caught']} | "
                     f"{_f(r['recall'])} | {_f(r['lower_bound'])} | {r['status']} |")
    return lines


def load_model(settings: Settings, args: argparse.Namespace, splits: Mapping[Split, list[Example]],
               policy: Policy) -> tuple[Classifier, str]:
    """The classifier to report on: a saved directory, a registry alias or version, else the cached baseline."""
    if args.model_dir:
        from triage.models.io import load_classifier

        classifier = load_classifier(args.model_dir)
        return classifier, f"{classifier.card.kind} from {args.model_dir}"
    if args.alias or args.version:
        from triage.adapters import mlflow_registry as registry

        loaded = registry.load_version(settings, args.version) if args.version else registry.load_model(
            settings, args.alias)
        where = f"v{loaded.version}" + (f" (@{args.alias})" if args.alias and not args.version else "")
        return loaded.classifier, f"{loaded.classifier.card.kind} {where} from the registry"
    classifier = baseline_classifier(settings, splits["train"], splits["validation"], policy)
    return classifier, "TF-IDF baseline fitted on the train split"


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(description="Both routing promises per category on the test split.")
    parser.add_argument("--model-dir", type=Path, default=None, help="a saved classifier (default: fit baseline)")
    parser.add_argument("--alias", default=None, help="a registry alias (e.g. champion)")
    parser.add_argument("--version", default=None, help="a registered version")
    parser.add_argument("--delta", type=float, default=DEFAULT_DELTA, help="1 - confidence of the bounds")
    parser.add_argument("--min-support", type=int, default=MIN_SUPPORT, help="asserted tickets to judge precision")
    parser.add_argument("--min-positives", type=int, default=MIN_POSITIVES,
                        help="test positives to judge the auto-clear and severity promises")
    parser.add_argument("--max-review-share", type=float, default=MAX_REVIEW_SHARE)
    parser.add_argument("--refit-points", action="store_true",
                        help="fit both promises again on validation under the current policy (TRIAGE_POLICY), as "
                        "training would, instead of the card's: what a changed max_auto_clear_miss or "
                        "target_precision would do to the same model")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    settings = settings or get_settings()
    policy = settings.load_policy()
    started = time.perf_counter()
    examples, origin = load_training_data(settings)
    splits = split_examples(examples)
    try:
        classifier, model = load_model(settings, args, splits, policy)
    except ModelNotFoundError as err:
        print(f"routing_report: {err}", file=sys.stderr)
        return 2
    card = classifier.card
    cats = [c for c in card.categories if c in policy.category_names]
    idx = [card.categories.index(c) for c in cats]

    validation, test = splits["validation"], splits["test"]
    thresholds = {c: card.thresholds.get(c, policy.category(c).threshold) for c in cats}
    points_origin = "from the model card (what serving uses)"
    if args.refit_points:
        pred_val = predict_examples(classifier, validation)
        card.extra.update(fit_routing_points(
            label_matrix(validation, cats), pred_val.categories[:, idx], pred_val.severity,
            severity_vector(validation, policy.severity_names), cats, thresholds, policy))
        # A model whose calibration or stacker was fitted on validation scores it in-sample: a little optimistic.
        points_origin = (f"refitted on the validation split ({len(validation):,} rows) under policy "
                         f"{policy.name} {policy.version} (--refit-points; not what serving uses)")
    points = {k: v for k, v in points_from_card(card.extra).items() if k in cats}
    if set(points) != set(cats):
        pv = predict_examples(classifier, validation).categories[:, idx]
        points = fit_operating_points(label_matrix(validation, cats), pv, cats, policy, args.delta)
        points_origin = f"fitted on the validation split ({len(validation):,} rows)"
    pred_test = predict_examples(classifier, test)
    pt = pred_test.categories[:, idx]

    scorer = Scorer(classifier, policy)
    scores = scorer.to_scores(pred_test)
    decisions = [scorer.decide(s) for s in scores]
    auto = np.array([d.route == "auto" for d in decisions], dtype=bool)
    plain = np.array([decide(s, policy, thresholds).route == "auto" for s in scores], dtype=bool)
    flagged = np.array([[c in d.prediction_set for c in cats] for d in decisions], dtype=bool).reshape(len(test), -1)
    flagged |= pt >= np.array([thresholds[c] for c in cats])
    y = label_matrix(test, cats)
    clear = clear_points_from_card(card.extra)
    rows = category_rows(y, pt, cats, points, thresholds, auto, policy, args.min_support)
    clears = clear_rows(y, auto, flagged, cats, policy, clear, args.delta, args.min_positives)
    predicted_rank = np.array([policy.severity_rank(d.severity) for d in decisions], dtype=np.int64)
    severe = severity_rows(severity_vector(test, policy.severity_names), auto, predicted_rank, policy, args.delta,
                           args.min_positives)
    work = review_shares(~auto, y, [ex.source for ex in test])
    causes = review_causes([d.reasons for d in decisions], ~auto, y, cats)
    by_language = review_shares(~auto, y, [ex.language for ex in test])["by_key"]
    overall = {
        "model": model, "data_origin": origin, "points_origin": points_origin,
        "auto_clear_on_card": bool(clear), "validation_rows": len(validation), "test_rows": len(test),
        "delta": args.delta, "min_support": args.min_support, "min_positives": args.min_positives,
        "auto_share_decide": float(plain.mean()) if len(plain) else 0.0,
        "auto_share_guarded": float(auto.mean()) if len(auto) else 0.0,
        "review_share": work["overall"]["review_share"], "clean_review_share": work["overall"]["clean_review_share"],
        "max_review_share": args.max_review_share, "seconds": round(time.perf_counter() - started, 1),
    }
    text = "\n".join([
        markdown(rows, overall).replace("with the precision gate", "with the scorer's decisions"), "",
        "Routes from triage.scorer.Scorer"
        + (" with the card's auto-clear points and severity guard." if clear else
           " (the card carries no auto-clear points: decide() with the precision gate)."), "",
        *promises_markdown(clears, severe, args.delta), "", "### Review workload", "",
        *workload_markdown(work, args.max_review_share), "", *causes_markdown(causes)])
    payload = {"overall": overall, "categories": rows, "auto_clear": clears, "severity": severe,
               "workload": {**work, "by_language": by_language, "clean_review_causes": causes},
               "operating_points": {k: v.to_dict() for k, v in points.items()},
               "clear_points": {k: v.to_dict() for k, v in clear.items()}}
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "routing_report.json").write_text(json.dumps(payload, indent=2))
    (args.results / "routing_report.md").write_text(f"# Routing report\n\n{text}\n")
    if not args.no_mlflow:
        _log_to_mlflow(settings, payload, text)
    print(f"\nwrote {args.results / 'routing_report.md'} and .json ({overall['seconds']}s)")
    return 0


def _log_to_mlflow(settings: Settings, payload: Mapping[str, Any], text: str) -> None:
    """The report as a `routing-report` run: headline numbers as metrics, the tables as artifacts."""
    from triage.adapters import mlflow_registry as registry

    o = payload["overall"]
    numbers: dict[str, float | None] = {"review_share": o["review_share"], "auto_share": o["auto_share_guarded"],
                                        "clean_review_share": o["clean_review_share"]}
    numbers.update({f"auto_clear.{r['category']}.share": r["share"] for r in payload["auto_clear"]})
    numbers.update({f"auto_clear.{r['category']}.upper_bound": r["upper_bound"] for r in payload["auto_clear"]})
    numbers.update({f"precision.{r['category']}.achieved": r["achieved_precision"] for r in payload["categories"]})
    numbers.update({f"severe.{r['severity'].replace(' ', '_')}.recall": r["recall"] for r in payload["severity"]})
    numbers.update({f"review_share.{k}": w["review_share"] for k, w in payload["workload"]["by_key"].items()})
    with registry.run(settings, name="routing-report", tags={"kind": "report"}):
        registry.log_params({"model": o["model"], "data_origin": o["data_origin"], "delta": o["delta"]})
        registry.log_metrics({k: float(v) for k, v in numbers.items() if v is not None})
        registry.log_dict(dict(payload), "routing_report.json")
        registry.log_text(f"# Routing report\n\n{text}\n", "routing_report.md")


if __name__ == "__main__":
    raise SystemExit(main())
