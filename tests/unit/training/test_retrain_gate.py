"""The retrain comparison feeds the gate both models' decisions on the same golden examples."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from training.evaluate import predict_examples
from training.retrain import build_sets, compare, decisions
from triage.data.sources import load_examples
from triage.models.base import Classifier
from triage.settings import Settings
from triage.taxonomy import Policy
from triage_cli.main import _print_gate


def test_a_model_against_itself_passes_every_rule_with_a_zero_interval(tiny_classifier: Classifier,
                                                                      settings: Settings) -> None:
    sets = build_sets(load_examples(), [], 1.0)
    comparison = compare(settings, tiny_classifier, "1", tiny_classifier, "2", sets)
    gate = comparison.gate
    assert gate.passed and not gate.inconclusive
    rules = {r.rule: r for r in gate.results}
    assert "golden/macro_f1" in rules and "golden/severity_recall_critical" in rules
    measured = [r for r in gate.results if r.verdict != "not measured"]
    assert len(measured) >= 5
    assert all((r.low, r.high) == (0.0, 0.0) and r.n > 0 for r in measured)
    # the gate's macro-F1 is the metric the comparison reports
    assert abs(rules["golden/macro_f1"].champion - 100 * comparison.champion["golden/macro_f1"]) < 1e-6
    out = io.StringIO()
    _print_gate(Console(file=out, width=300), gate)
    text = out.getvalue()
    assert "PASSED" in text and "95% interval [+0.00, +0.00]" in text


def test_no_champion_is_reported_not_gated(tiny_classifier: Classifier, settings: Settings) -> None:
    comparison = compare(settings, None, None, tiny_classifier, "1", build_sets(load_examples(), [], 1.0))
    assert comparison.gate.passed and comparison.gate.results[0].verdict == "not measured"


def test_decisions_use_each_models_thresholds_in_policy_order(tiny_classifier: Classifier, policy: Policy) -> None:
    examples = load_examples()[:40]
    prediction = predict_examples(tiny_classifier, examples)
    cats, severity = decisions(tiny_classifier, prediction, policy)
    card = tiny_classifier.card
    assert cats.shape == (40, len(policy.category_names)) and severity.shape == (40,)
    for j, name in enumerate(policy.category_names):
        k = list(card.categories).index(name)
        threshold = card.thresholds.get(name, policy.category(name).threshold)
        assert np.array_equal(cats[:, j], prediction.categories[:, k] >= threshold)
    assert np.array_equal(severity, prediction.severity.argmax(axis=1))  # card levels are the policy's
