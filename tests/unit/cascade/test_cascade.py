"""The cascade: the full model only where the cheap one is unsure; bands fitted to agree with the full model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from triage.cascade import FAST, FULL, Bands, CascadeClassifier, fit_cascade, guarded_severities, macro_auprc
from triage.data.schema import label_matrix
from triage.data.sources import load_examples
from triage.data.splits import split_examples
from triage.models.base import Classifier, LoadedModel, ModelCard, Prediction
from triage.models.io import load_classifier
from triage.scorer import Scorer
from triage.settings import Settings
from triage.taxonomy import Policy
from triage.tickets import Ticket

LEVELS = ["none", "low", "medium", "high", "critical"]


class Table:
    """A classifier that answers from a table: text -> (category probabilities, severity); counts what it saw."""

    def __init__(self, kind: str, categories: list[str], rows: dict[str, tuple[list[float], list[float]]]) -> None:
        self.card = ModelCard(kind, categories, LEVELS, "default", "1", "x",
                              thresholds={c: 0.5 for c in categories})
        self.rows = rows
        self.seen: list[str] = []

    def predict(self, texts: Sequence[str]) -> Prediction:
        self.seen.extend(texts)
        cats = np.array([self.rows[t][0] for t in texts]).reshape(len(texts), len(self.card.categories))
        sev = np.array([self.rows[t][1] for t in texts]).reshape(len(texts), len(LEVELS))
        return Prediction(cats, sev)

    def save(self, directory: Path) -> None:
        self.card.write(directory)


CALM = [0.9, 0.1, 0.0, 0.0, 0.0]
SEVERE = [0.1, 0.1, 0.2, 0.4, 0.2]


@pytest.fixture
def pair() -> tuple[Table, Table]:
    rows = {
        "sure spam": ([0.97, 0.01], CALM),
        "sure clean": ([0.02, 0.01], CALM),
        "unsure spam": ([0.5, 0.01], CALM),
        "maybe hate": ([0.02, 0.2], CALM),  # hate is always reviewed: possible -> full model
        "severe": ([0.02, 0.01], SEVERE),
    }
    fast = Table("fast", ["spam", "hate"], rows)
    full = Table("full", ["hate", "spam"], {t: ([h + 0.001, s - 0.001], sev) for t, ((s, h), sev) in rows.items()})
    return fast, full


def test_full_model_only_for_unsure_always_review_and_severe(pair: tuple[Table, Table], policy: Policy) -> None:
    fast, full = pair
    cascade = CascadeClassifier(fast, full, Bands({"spam": 0.1, "hate": 0.1}, {"spam": 0.9, "hate": 0.9}, 0.3, 0.01),
                                guarded_severities(policy), ["hate"])
    texts = ["sure spam", "sure clean", "unsure spam", "maybe hate", "severe"]
    out = cascade.predict(texts)
    assert list(out.paths) == ["fast", "fast", "full", "full", "full"]  # type: ignore[arg-type]
    assert full.seen == ["unsure spam", "maybe hate", "severe"]
    assert fast.seen == texts
    assert cascade.card.categories == ["hate", "spam"]
    np.testing.assert_allclose(out.categories[0], [0.01, 0.97])  # fast rows re-ordered into the full model's order
    np.testing.assert_allclose(out.categories[2], [0.011, 0.499])  # full rows are the full model's numbers
    assert guarded_severities(policy) == ["high", "critical"]


def test_category_the_cheap_model_lacks_always_takes_the_full_path(policy: Policy) -> None:
    fast = Table("fast", ["spam"], {"a": ([0.99], CALM)})
    full = Table("full", ["spam", "privacy"], {"a": ([0.99, 0.3], CALM)})
    cascade = CascadeClassifier(fast, full, Bands({"spam": 0.1}, {"spam": 0.9}, 0.3, 0.0), ["high"], [])
    assert list(cascade.predict(["a"]).paths) == ["full"]  # type: ignore[arg-type]


def test_severity_scales_must_match() -> None:
    fast = Table("fast", ["spam"], {})
    full = Table("full", ["spam"], {})
    full.card.severity_levels = ["low", "high"]
    with pytest.raises(ValueError, match="differ in severity levels"):
        CascadeClassifier(fast, full, Bands({}, {}, 0.5, 0.0), [], [])


@pytest.fixture(scope="module")
def real_pair(policy: Policy) -> tuple[Classifier, Classifier, list[str], np.ndarray]:
    """Two real baselines of different strength on the shipped tickets, and held-out texts with labels."""
    from training.baseline import BaselineParams, fit

    splits = split_examples(load_examples())
    weak = fit(splits["train"], splits["validation"], policy, BaselineParams(min_df=1, n_jobs=1, char_ngram_max=4))
    strong = fit(splits["train"], splits["validation"], policy, BaselineParams(min_df=1, n_jobs=1))
    held = splits["validation"] + splits["test"]
    return weak, strong, [ex.text for ex in held], label_matrix(held, strong.card.categories)


def test_fitted_bands_meet_agreement_and_auprc(real_pair: tuple, policy: Policy) -> None:
    weak, strong, texts, labels = real_pair
    result = fit_cascade(weak, strong, texts, labels, policy, min_agreement=0.98, max_auprc_drop=0.005)
    spec = result.classifier.card.extra["cascade"]
    assert spec["expected_full_share"] == round(result.full_share, 4)
    assert result.agreement >= 0.98 and result.auprc_full - result.auprc_cascade <= 0.005
    # What fitting reports is what the cascade does on those tickets.
    cascade = result.classifier
    out = cascade.predict(texts)
    assert out.paths is not None
    assert np.mean(out.paths == "full") == pytest.approx(result.full_share)
    decisions = [(s.decision.route, s.decision.category, s.decision.severity)
                 for s in Scorer(cascade, policy).score([Ticket(str(i), t) for i, t in enumerate(texts)],
                                                        validate=False)]
    reference = [(s.decision.route, s.decision.category, s.decision.severity)
                 for s in Scorer(strong, policy).score([Ticket(str(i), t) for i, t in enumerate(texts)],
                                                       validate=False)]
    assert np.mean([a == b for a, b in zip(decisions, reference, strict=True)]) == pytest.approx(result.agreement)
    assert macro_auprc(labels, out.categories) == pytest.approx(result.auprc_cascade)
    # The chosen bands are the cheapest of those tried that met both targets.
    met = [t["full_share"] for t in result.tried
           if t["agreement"] >= 0.98 and result.auprc_full - t["auprc"] <= 0.005]
    assert result.full_share == min(met, default=1.0)
    assert result.full_share < 1.0  # the weak model alone is sure of some tickets


def test_unreachable_agreement_falls_back_to_the_full_model(real_pair: tuple, policy: Policy) -> None:
    weak, strong, texts, labels = real_pair
    result = fit_cascade(weak, strong, texts, labels, policy, min_agreement=1.01)
    assert result.full_share == 1.0
    assert set(result.classifier.predict(texts).paths) == {"full"}  # type: ignore[arg-type]


def test_saved_cascade_loads_and_serves_paths(real_pair: tuple, policy: Policy, tmp_path: Path,
                                             settings: Settings) -> None:
    weak, strong, texts, labels = real_pair
    cascade = fit_cascade(weak, strong, texts, labels, policy).classifier
    cascade.save(tmp_path / "cascade")
    assert (tmp_path / "cascade" / FAST).is_dir() and (tmp_path / "cascade" / FULL).is_dir()
    loaded = load_classifier(tmp_path / "cascade")
    assert isinstance(loaded, CascadeClassifier)
    a, b = cascade.predict(texts), loaded.predict(texts)
    np.testing.assert_allclose(a.categories, b.categories)
    assert list(a.paths) == list(b.paths)  # type: ignore[arg-type]

    class Source:
        def current_version(self) -> str:
            return "7"

        def load(self) -> LoadedModel:
            return LoadedModel(loaded, "triage", "7", "champion", None, {})

    with TestClient(create_app(settings, source=Source())) as client:
        info = client.get("/v1/model").json()
        assert info["kind"] == "cascade"
        assert info["expected_full_share"] == loaded.card.extra["cascade"]["expected_full_share"]
        body = {"tickets": [{"id": str(i), "text": t} for i, t in enumerate(texts[:40])]}
        results = client.post("/v1/score", json=body).json()["results"]
        assert [r["model"]["path"] for r in results] == list(a.paths[:40])  # type: ignore[index]


def test_cascade_with_seeded_categories_still_reports_paths(real_pair: tuple, policy: Policy,
                                                             tmp_path: Path) -> None:
    """A policy with a category on seed examples wraps the cascade in example heads; each row keeps its path."""
    from tests.seeded import NEW, HashEncoder, write_seeded_policy
    from triage.models.examples import with_example_heads
    from triage.taxonomy import load_policy

    weak, strong, texts, labels = real_pair
    cascade = fit_cascade(weak, strong, texts, labels, policy).classifier
    seeded = load_policy(write_seeded_policy(tmp_path))
    extended = with_example_heads(cascade, seeded, HashEncoder())
    assert NEW in extended.card.categories
    plain, wrapped = cascade.predict(texts[:60]), extended.predict(texts[:60])
    assert wrapped.paths is not None and list(wrapped.paths) == list(plain.paths)  # type: ignore[arg-type]
    items = Scorer(extended, seeded).score([Ticket(str(i), t) for i, t in enumerate(texts[:60])])
    assert [it.path for it in items] == list(plain.paths)  # type: ignore[arg-type]


def test_per_category_bands_loosen_only_where_the_cheap_model_is_reliable(policy: Policy) -> None:
    """spam: the cheap model equals the full one; fraud: it is noisy. One quantile for both must be as wide as fraud
    needs; per-category bands keep fraud's wide and narrow spam's, so fewer tickets take the full path."""
    rng = np.random.default_rng(0)
    n = 3000
    spam, fraud = rng.beta(0.3, 0.3, n), rng.beta(0.2, 0.8, n)
    noisy = np.clip(fraud + rng.normal(0, 0.15, n), 0, 1)
    texts = [f"t{i}" for i in range(n)]
    fast = Table("fast", ["spam", "fraud"], {t: ([spam[i], noisy[i]], CALM) for i, t in enumerate(texts)})
    full = Table("full", ["spam", "fraud"], {t: ([spam[i], fraud[i]], CALM) for i, t in enumerate(texts)})
    labels = np.column_stack([spam > 0.5, fraud > 0.5]).astype(float)
    result = fit_cascade(fast, full, texts, labels, policy, min_agreement=0.97, max_auprc_drop=0.05)
    bands = result.classifier.bands
    assert bands.alphas is not None and bands.alphas["spam"] > bands.alphas["fraud"]
    global_met = [t["full_share"] for t in result.tried if "per_category" not in t
                  and t["agreement"] >= 0.97 and result.auprc_full - t["auprc"] <= 0.05]
    assert result.full_share < min(global_met)
    # What fitting reports is what the cascade does.
    out = result.classifier.predict(texts)
    assert np.mean(np.asarray(out.paths) == FULL) == pytest.approx(result.full_share)
    scorer = Scorer(full, policy)
    got = [(d.route, d.category, d.severity) for d in map(scorer.decide, scorer.to_scores(out))]
    want = [(d.route, d.category, d.severity) for d in map(scorer.decide, scorer.to_scores(full.predict(texts)))]
    assert np.mean([a == b for a, b in zip(got, want, strict=True)]) == pytest.approx(result.agreement)
    assert result.agreement >= 0.97


def test_spare_is_held_back_on_validation(pair: tuple[Table, Table], policy: Policy) -> None:
    rng = np.random.default_rng(1)
    n = 2000
    p = rng.beta(0.3, 0.3, n)
    texts = [f"t{i}" for i in range(n)]
    fast = Table("fast", ["spam"], {t: ([float(np.clip(p[i] + rng.normal(0, 0.1), 0, 1))], CALM)
                                    for i, t in enumerate(texts)})
    full = Table("full", ["spam"], {t: ([p[i]], CALM) for i, t in enumerate(texts)})
    labels = (p > 0.5).astype(float)[:, None]
    plain = fit_cascade(fast, full, texts, labels, policy, min_agreement=0.95, max_auprc_drop=0.05)
    spared = fit_cascade(fast, full, texts, labels, policy, min_agreement=0.95, max_auprc_drop=0.05, spare=0.02)
    assert spared.agreement >= 0.97 and spared.full_share >= plain.full_share
    assert spared.classifier.card.extra["cascade"]["spare"] == 0.02


def test_decision_turns_follow_the_cards_routing_points(policy: Policy) -> None:
    from triage.cascade import decision_turns

    card = ModelCard("full", ["spam", "fraud"], LEVELS, "default", "1", "x", thresholds={"spam": 0.5, "fraud": 0.45})
    turns = decision_turns(card, policy)
    assert turns.keys() == {"spam", "fraud"}
    np.testing.assert_allclose(turns["spam"], [0.3, 0.5, 0.7])
    np.testing.assert_allclose(turns["fraud"], [0.25, 0.45, 0.75])
    card.extra = {"clear_points": {"spam": {"category": "spam", "threshold": 0.02, "max_miss": 0.05, "certified": True,
                                            "miss_upper_bound": 0.04, "validation_miss": 0.01,
                                            "cleared_share": 0.6, "positives": 80, "known": 100}},
                  "operating_points": {"spam": {"category": "spam", "target_precision": 0.9, "threshold": 0.8,
                                                "expected_precision": 0.92, "precision_lower_bound": 0.9,
                                                "recall": 0.5, "selected": 10, "positives": 20, "known": 100}}}
    # With both promises on the card routing turns at the auto-clear and operating points, not min-confidence.
    assert decision_turns(card, policy) == {"spam": [0.02, 0.5, 0.8], "fraud": [0.45]}
