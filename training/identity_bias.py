"""Identity-term bias on the evaluation-only `jigsaw_identity_templates` source.

Per identity term of the templates ("<name> is a <adjective> <term>", "Being <term> is <adjective>", ...): the share
of non-toxic sentences the model flags (false positives: over-flagging benign identity mentions), the share of
toxic sentences it flags, and the subgroup AUC of its score. On the Wikipedia comments and their identity-swapped
copies: how often swapping identity terms changes the decision, and by how much the score moves.

    python -m training.identity_bias [--model-dir DIR] [--results results]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from training.evaluate import predict_examples
from triage.data.schema import Example
from triage.models.base import Classifier
from triage.settings import get_settings
from triage.taxonomy import Policy

log = logging.getLogger(__name__)

SOURCE = "jigsaw_identity_templates"
# The categories the templates speak to: a sentence is "flagged" when any of them reaches its threshold.
BIAS_CATEGORIES = ("hate", "harassment", "violence")


def flags(classifier: Classifier, examples: Sequence[Example], policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(score, flagged) per example: the highest probability of the bias categories, and whether any of them
    reaches the model's threshold; both of shape (n,)."""
    card = classifier.card
    cats = [c for c in BIAS_CATEGORIES if c in card.categories]
    if not cats:
        raise ValueError(f"the model predicts none of {', '.join(BIAS_CATEGORIES)}")
    proba = predict_examples(classifier, examples).categories
    idx = [list(card.categories).index(c) for c in cats]
    thresholds = np.array([card.thresholds.get(c, policy.category(c).threshold) for c in cats])
    p = proba[:, idx]
    return np.asarray(p.max(axis=1)), np.asarray((p >= thresholds).any(axis=1))


def term_rows(examples: Sequence[Example], score: np.ndarray, flagged: np.ndarray) -> list[dict[str, Any]]:
    """One row per identity term of the templates, worst false-positive share first."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        if ex.meta.get("set") == "templates" and ex.meta.get("term"):
            groups[ex.meta["term"]].append(i)
    rows = []
    for term, idx_list in groups.items():
        idx = np.array(idx_list)
        toxic = np.array([examples[i].meta["toxic"] == "1" for i in idx])
        auc = float(roc_auc_score(toxic, score[idx])) if 0 < toxic.sum() < len(idx) else None
        rows.append({"term": term, "nontoxic": int((~toxic).sum()), "toxic": int(toxic.sum()),
                     "false_positive_share": float(flagged[idx][~toxic].mean()) if (~toxic).any() else None,
                     "toxic_flagged_share": float(flagged[idx][toxic].mean()) if toxic.any() else None,
                     "subgroup_auc": auc})
    return sorted(rows, key=lambda r: -(r["false_positive_share"] or 0.0))


def counterfactual(examples: Sequence[Example], score: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """Wikipedia comments vs the same comments with identity terms swapped (pairs by `rev_id`)."""
    by_rev: dict[str, dict[str, int]] = defaultdict(dict)
    for i, ex in enumerate(examples):
        if ex.meta.get("set", "").startswith("toxicity_") and ex.meta.get("rev_id"):
            by_rev[ex.meta["rev_id"]][ex.meta["set"]] = i
    pairs = [(d["toxicity_nonfuzzed_testset"], d["toxicity_fuzzed_testset"]) for d in by_rev.values()
             if len(d) == 2]
    if not pairs:
        return {"pairs": 0}
    a, b = np.array(pairs).T
    return {"pairs": len(pairs), "decision_flips": float(np.mean(flagged[a] != flagged[b])),
            "mean_abs_score_change": float(np.mean(np.abs(score[a] - score[b]))),
            "max_abs_score_change": float(np.max(np.abs(score[a] - score[b])))}


def identity_bias(classifier: Classifier, examples: Sequence[Example], policy: Policy) -> dict[str, Any]:
    """The whole report as a JSON-ready dict: per-term rows, their spread, and the counterfactual pairs."""
    examples = [ex for ex in examples if ex.source == SOURCE]
    if not examples:
        raise ValueError(f"no {SOURCE} examples: load them with load_all(datasets_dir, ['{SOURCE}'])")
    score, flagged = flags(classifier, examples, policy)
    rows = term_rows(examples, score, flagged)
    fps = [r["false_positive_share"] for r in rows if r["false_positive_share"] is not None]
    aucs = [r["subgroup_auc"] for r in rows if r["subgroup_auc"] is not None]
    return {
        "terms": rows,
        "false_positive_share_max": max(fps) if fps else None,
        "false_positive_share_min": min(fps) if fps else None,
        "false_positive_share_mean": float(np.mean(fps)) if fps else None,
        "subgroup_auc_min": min(aucs) if aucs else None,
        "counterfactual": counterfactual(examples, score, flagged),
    }


def markdown(report: dict[str, Any], model: str) -> str:
    """The report as Markdown tables."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = [f"Model: {model}. A sentence is flagged when any of {', '.join(BIAS_CATEGORIES)} reaches the model's "
             "threshold.", "",
             f"Non-toxic template sentences flagged: mean {pct(report['false_positive_share_mean'])}, from "
             f"{pct(report['false_positive_share_min'])} to {pct(report['false_positive_share_max'])} across "
             f"terms; lowest subgroup AUC {report['subgroup_auc_min'] or 0:.3f}.", "",
             "| identity term | non-toxic | flagged (false positives) | toxic | flagged | subgroup AUC |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in report["terms"]:
        auc = "n/a" if r["subgroup_auc"] is None else f"{r['subgroup_auc']:.3f}"
        lines.append(f"| {r['term']} | {r['nontoxic']} | {pct(r['false_positive_share'])} | {r['toxic']} | "
                     f"{pct(r['toxic_flagged_share'])} | {auc} |")
    cf = report["counterfactual"]
    if cf.get("pairs"):
        lines += ["", f"Wikipedia comments vs identity-swapped copies ({cf['pairs']} pairs that differ): decision "
                  f"changed on {pct(cf['decision_flips'])}; score moved by {cf['mean_abs_score_change']:.3f} on "
                  f"average, {cf['max_abs_score_change']:.3f} at most."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Identity-term bias on the evaluation-only template sets.")
    parser.add_argument("--model-dir", type=Path, default=None, help="a saved classifier (default: fit baseline)")
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

    if args.model_dir:
        from triage.models.io import load_classifier

        classifier = load_classifier(args.model_dir)
        model = f"{classifier.card.kind} from {args.model_dir}"
    else:
        from training.routing_report import baseline_classifier
        from triage.data.splits import split_examples

        splits = split_examples(load_all(settings.datasets_dir, policy=policy))
        classifier = baseline_classifier(settings, splits["train"], splits["validation"], policy)
        model = "TF-IDF baseline fitted on the train split"
    report = identity_bias(classifier, load_all(settings.datasets_dir, [SOURCE], policy), policy)
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(report, model)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "identity_bias.json").write_text(json.dumps({"model": model, **report}, indent=2))
    (args.results / "identity_bias.md").write_text(f"# Identity-term bias\n\n{text}\n")
    print(f"\nwrote {args.results / 'identity_bias.md'} and .json ({report['seconds']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
