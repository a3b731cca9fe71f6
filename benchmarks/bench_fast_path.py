"""Benchmark: the baseline's per-ticket cost in-process, scikit-learn's path vs the matrix-product path.

Usage: .venv/bin/python benchmarks/bench_fast_path.py [--model-dir DIR] [--tickets 1000]
Loads a saved baseline directory (or the registry's @champion), scores the same real test-split tickets one at
a time and in batches of 64 through `predict_reference` (FeatureUnion + one `decision_function` per head, today's
path) and `predict` (the batch's n-gram columns, then a few array operations), checks the two agree to 1e-6,
and also times the whole `Scorer.score` per ticket (model + decisions). Prints the figures with the CPU and load
average, writes results/bench_fast_path.json. Target: batch-1 model cost at least 10x lower.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import ROOT, real_texts
from benchmarks.hardware import cpu_info
from triage.models.base import Prediction
from triage.models.baseline import BaselineClassifier
from triage.models.io import load_classifier
from triage.scorer import Scorer
from triage.settings import get_settings
from triage.tickets import Ticket


def per_ticket_us(fn: Callable[[Sequence[str]], object], texts: list[str], batch: int, repeats: int) -> float:
    """Best-of-`repeats` mean microseconds per ticket scoring `texts` in batches of `batch`."""
    batches = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in batches:
            fn(b)
        best = min(best, time.perf_counter() - t0)
    return best / len(texts) * 1e6


def load_baseline(model_dir: Path | None) -> BaselineClassifier:
    """The baseline to measure: a saved directory, else the registry's @champion."""
    if model_dir is not None:
        classifier = load_classifier(model_dir)
    else:
        from triage.adapters import mlflow_registry as registry

        classifier = registry.load_model(get_settings()).classifier
    if not isinstance(classifier, BaselineClassifier):
        sys.exit(f"benchmark: needs a baseline model, got {type(classifier).__name__}")
    return classifier


def max_difference(a: Prediction, b: Prediction) -> float:
    """Largest absolute difference between two predictions' probabilities."""
    return float(max(np.abs(a.categories - b.categories).max(), np.abs(a.severity - b.severity).max()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=None, help="saved baseline dir (default: @champion)")
    parser.add_argument("--tickets", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench_fast_path.json")
    args = parser.parse_args()

    model = load_baseline(args.model_dir)
    texts = real_texts(args.tickets, seed=11, split="test", max_chars=2000)
    load_before = os.getloadavg()
    reference, fast = model.predict_reference(texts), model.predict(texts)
    scorer = Scorer(model, get_settings().load_policy())
    tickets = [Ticket(f"t{i}", t) for i, t in enumerate(texts)]
    scorer.score(tickets[:8])
    results: dict[str, object] = {
        "cpu": cpu_info(), "load_average_1m_before": load_before[0], "tickets": len(texts),
        "features": model.fast.n_features, "heads": int(model.fast.weights.shape[1]),
        "max_abs_difference": max_difference(reference, fast),
    }
    for batch in (1, 64):
        old = per_ticket_us(model.predict_reference, texts, batch, args.repeats)
        new = per_ticket_us(model.predict, texts, batch, args.repeats)
        whole = per_ticket_us(lambda b: scorer.score([Ticket(str(i), t) for i, t in enumerate(b)], validate=False),
                              texts, batch, args.repeats)
        results[f"batch_{batch}"] = {"sklearn_us_per_ticket": round(old, 1), "fast_us_per_ticket": round(new, 1),
                                     "speedup": round(old / new, 1), "scorer_us_per_ticket": round(whole, 1)}
    results["load_average_1m_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"CPU {results['cpu']['model']}; load average {load_before[0]:.1f} -> {results['load_average_1m_after']:.1f}"
          f" (2 cores shared); {len(texts)} test-split texts; max |fast - sklearn| = "
          f"{results['max_abs_difference']:.2e}")
    print(f"{'batch':>6}{'sklearn us/ticket':>19}{'fast us/ticket':>16}{'speedup':>9}{'Scorer us/ticket':>18}")
    for batch in (1, 64):
        r = results[f"batch_{batch}"]
        assert isinstance(r, dict)
        print(f"{batch:>6}{r['sklearn_us_per_ticket']:>19.0f}{r['fast_us_per_ticket']:>16.0f}{r['speedup']:>8.1f}x"
              f"{r['scorer_us_per_ticket']:>18.0f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
