"""Drift: recent inputs and scores compared with the training data's, and new-looking clusters of review tickets.

Per category, the distribution of recent calibrated scores against the scores the same model gives a sample of
its training texts; the text length and the writing-system mix likewise. Each comparison is a population
stability index (PSI; bins are the reference's deciles): below 0.1 stable, 0.1-0.25 moderate, at or over 0.25 a
shift worth a look, which is what `flagged` means. Comparisons over fewer than `min_decisions` recent decisions
are reported but never flagged (too few to tell).

Clusters: recent review tickets whose text is stored (TRIAGE_DECISIONS__STORE_TEXT) are embedded with character
n-gram TF-IDF (fast on a CPU, no model download; the reference is fitted on the training sample), and a ticket is
"far" when its cosine distance to the nearest training text exceeds what held-out training texts show at their
99th percentile. Far tickets are grouped with k-means; groups of five or more are reported with their five most
typical ticket ids: candidates for a new abuse pattern.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np

from triage.text import script_of

log = logging.getLogger(__name__)
PSI_FLAG = 0.25
EPS = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` (1-D samples), bins at expected's quantiles."""
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:  # (nearly) constant reference: two bins, at and above its value
        edges = np.array([-np.inf, float(np.max(expected)) + 1e-12, np.inf])
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / max(len(expected), 1)
    a = np.histogram(actual, edges)[0] / max(len(actual), 1)
    return categorical_psi(dict(enumerate(e)), dict(enumerate(a)))


def categorical_psi(expected: Mapping[Any, float], actual: Mapping[Any, float]) -> float:
    """PSI between two distributions over categories (shares or counts; normalised here)."""
    keys = sorted(set(expected) | set(actual), key=str)
    e = np.array([float(expected.get(k, 0.0)) for k in keys])
    a = np.array([float(actual.get(k, 0.0)) for k in keys])
    e = np.clip(e / max(e.sum(), EPS), EPS, None)
    a = np.clip(a / max(a.sum(), EPS), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class DriftReference:
    """What the training data looks like to one model: its scores, lengths, scripts and text embeddings."""

    model: str
    categories: list[str]
    scores: np.ndarray  # (n, C) the model's calibrated category scores on the training sample, 6 decimals
    lengths: np.ndarray  # (n,)
    scripts: dict[str, int]
    vectorizer: Any = None  # fitted char n-gram TfidfVectorizer
    embeddings: Any = None  # (m, V) sparse, L2-normalised rows of the training texts used as neighbours
    far_distance: float = 1.0  # 99th percentile of held-out training texts' nearest-neighbour distance

    @classmethod
    def build(cls, model: str, categories: Sequence[str], texts: Sequence[str], scores: np.ndarray,
              seed: int = 0) -> DriftReference:
        """From a sample of training texts and the model's scores on them (scores: (n, C) in `categories`)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        rng = np.random.default_rng(seed)
        order = rng.permutation(len(texts))
        held = order[: max(1, len(texts) // 10)]
        base = order[len(held):]
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), min_df=2, max_features=50_000,
                              sublinear_tf=True, dtype=np.float32)
        emb = vec.fit_transform([texts[i] for i in base])
        # Rounded as the log rounds them (6 decimals): a point mass must fall in the same bin on both sides.
        ref = cls(model, list(categories), np.round(np.asarray(scores, dtype=np.float64), 6),
                  np.array([len(t) for t in texts]), dict(Counter(script_of(t) for t in texts)), vec, emb)
        ref.far_distance = float(np.quantile(ref.distances([texts[i] for i in held]), 0.99))
        return ref

    def distances(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine distance of each text to its nearest training text, shape (n,)."""
        if not len(texts):
            return np.zeros(0)
        x = self.vectorizer.transform(texts)
        out = np.empty(len(texts))
        for start in range(0, len(texts), 512):
            sims = (x[start:start + 512] @ self.embeddings.T).max(axis=1).toarray().ravel()
            out[start:start + 512] = 1.0 - sims
        return out

    def save(self, path: Path) -> None:
        """Write to `path` (joblib)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)

    @staticmethod
    def load(path: Path) -> DriftReference:
        """Read one written by `save`."""
        ref = joblib.load(path)
        if not isinstance(ref, DriftReference):
            raise TypeError(f"{path} does not hold a drift reference")
        return ref


@dataclass
class DriftResult:
    """Every comparison, whether anything is flagged, and the far clusters."""

    decisions: int
    features: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        """Whether any comparison or cluster is flagged."""
        return any(f["flagged"] for f in self.features) or bool(self.clusters)


def compare(ref: DriftReference, rows: Sequence[Mapping[str, Any]], min_decisions: int = 100,
            max_clusters: int = 6, seed: int = 0) -> DriftResult:
    """Drift of recent decision rows (decision_log columns; `text` used for clusters when present)."""
    n = len(rows)
    notes: list[str] = []
    enough = n >= min_decisions
    if not enough:
        notes.append(f"only {n} decision(s) in the period (< {min_decisions}): shown, never flagged")
    features: list[dict[str, Any]] = []

    def add(feature: str, value: float, detail: str) -> None:
        features.append({"feature": feature, "psi": round(value, 4), "flagged": bool(enough and value >= PSI_FLAG),
                         "detail": detail})

    if n:
        for j, cat in enumerate(ref.categories):
            recent = np.round(np.array([float(r["category_scores"].get(cat, 0.0)) for r in rows]), 6)
            add(f"score:{cat}", psi(ref.scores[:, j], recent),
                f"mean {recent.mean():.3f} (training {ref.scores[:, j].mean():.3f})")
        lengths = np.array([int(r["text_length"]) for r in rows])
        add("text_length", psi(ref.lengths, lengths),
            f"median {np.median(lengths):.0f} chars (training {np.median(ref.lengths):.0f})")
        scripts = Counter(str(r["script"]) for r in rows)
        add("script_mix", categorical_psi(ref.scripts, scripts),
            ", ".join(f"{k} {v / n:.0%}" for k, v in scripts.most_common(4)))
    clusters = far_clusters(ref, rows, max_clusters, seed, notes)
    return DriftResult(n, features, clusters, notes)


def far_clusters(ref: DriftReference, rows: Sequence[Mapping[str, Any]], max_clusters: int, seed: int,
                 notes: list[str]) -> list[dict[str, Any]]:
    """Groups of 5+ recent review tickets far from every training text, with five typical ticket ids each."""
    review = [r for r in rows if r.get("route") == "review" and r.get("text")]
    if not review:
        notes.append("no review ticket texts stored in the period (TRIAGE_DECISIONS__STORE_TEXT): no clusters")
        return []
    dist = ref.distances([str(r["text"]) for r in review])
    far = np.flatnonzero(dist > ref.far_distance)
    notes.append(f"{len(far)} of {len(review)} review ticket(s) are further from the training data than 99% of "
                 f"held-out training texts (distance > {ref.far_distance:.3f})")
    expected = 0.01 * len(review)
    if len(far) < 5 or len(far) <= 2 * expected:
        return []
    from sklearn.cluster import KMeans

    x = ref.vectorizer.transform([str(review[i]["text"]) for i in far])
    k = int(min(max_clusters, max(1, len(far) // 10)))
    km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x)
    terms = np.array(ref.vectorizer.get_feature_names_out())
    out: list[dict[str, Any]] = []
    for c in range(k):
        members = np.flatnonzero(km.labels_ == c)
        if len(members) < 5:
            continue
        centre = km.cluster_centers_[c]
        closeness = np.asarray(x[members] @ centre).ravel()
        typical = members[np.argsort(-closeness)[:5]]
        out.append({"cluster": len(out) + 1, "size": len(members),
                    "mean_distance": round(float(dist[far[members]].mean()), 4),
                    "top_ngrams": [t.strip() for t in terms[np.argsort(-centre)[:8]]],
                    "example_ticket_ids": [str(review[far[i]]["ticket_id"]) for i in typical]})
    return sorted(out, key=lambda c: -c["size"])


# ---------------------------------------------------------------------------------------------- references on disk

def training_sample(datasets_dir: Path | None, limit: int = 3000, seed: int = 0) -> list[str]:
    """A random sample of the training split's texts (shared datasets when present, else the shipped examples)."""
    from triage.data.sources import load_all, load_examples
    from triage.data.splits import split_of

    examples = [*load_all(datasets_dir), *load_examples()] if datasets_dir else load_examples()
    texts = [e.text for e in examples if split_of(e.text) == "train"]
    rng = np.random.default_rng(seed)
    return [texts[i] for i in rng.permutation(len(texts))[:limit]]


def reference_path(home: Path, model_name: str, model_version: str) -> Path:
    """Where the drift reference of one model version is cached."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{model_name}-{model_version}")
    return home / "drift" / f"{safe}.joblib"


def cached_reference(home: Path, model_name: str, model_version: str) -> DriftReference | None:
    """The cached reference of a model version, or None."""
    path = reference_path(home, model_name, model_version)
    return DriftReference.load(path) if path.is_file() else None


def recent_rows(store: Any, since: Any, until: Any) -> list[dict[str, Any]]:
    """The decision_log columns drift reads, for [since, until)."""
    return store.decisions_between(since, until, columns=["ticket_id", "model_name", "model_version", "route",
                                                          "category_scores", "text_length", "script", "text"])


def drift_tables(result: DriftResult) -> dict[str, Any]:
    """The result as two tables (feature comparisons, far clusters), for CSV and the report."""
    import pandas as pd

    clusters = pd.DataFrame([{**c, "top_ngrams": " | ".join(c["top_ngrams"]),
                              "example_ticket_ids": " ".join(c["example_ticket_ids"])} for c in result.clusters],
                            columns=["cluster", "size", "mean_distance", "top_ngrams", "example_ticket_ids"])
    return {"drift": pd.DataFrame(result.features, columns=["feature", "psi", "flagged", "detail"]),
            "drift_clusters": clusters}


def drift_for_period(store: Any, since: Any, until: Any, home: Path | None = None,
                     reference: DriftReference | None = None) -> tuple[DriftResult | None, list[str]]:
    """Drift of [since, until) against the given reference, else the cached one of the period's main model."""
    rows = recent_rows(store, since, until)
    if reference is None:
        if not rows:
            return None, ["no decisions in the period"]
        name, version = Counter((r["model_name"], r["model_version"]) for r in rows).most_common(1)[0][0]
        reference = cached_reference(home, name, version) if home is not None else None
        if reference is None:
            return None, [f"no drift reference for model {name} v{version} yet: GET /v1/drift builds and caches it"]
    result = compare(reference, rows)
    return result, result.notes
