"""The new-category journey: a category starts from 10 seed examples, then learns from rounds of 25 expert labels.

One command: `nice .venv/bin/python benchmarks/new_category.py` (`--quick` for 1 seed, 2 categories).

Set-up (also written to results/new_category.md):
- per category (spam, harassment, hate; self_harm has 26 known positives in the shared data, too few to test on),
  the English rows of the shared datasets whose source labels that category (triage.data.sources; unknown labels
  are left out, never taken as negatives); pool = a random sample of its train+validation rows, test = a random
  sample of its fixed test split (triage.data.splits). Texts are embedded once by the frozen encoder and cached.
- "new": no model has seen a label of the category. 10 random pool positives become the policy's seed examples.
- round 0: the examples head of triage/models/examples.py (calibrated on the shipped example tickets as unrelated
  texts, as at serve time, minus those labelled with the category), F1 at its threshold on the test rows.
- each round: 25 pool rows are chosen - by the example-guided queue (triage.selection.example_guided on the current
  head's probabilities; `--explore` of them, 20% by default, at random, as the review queue also carries tickets
  sent for other reasons) or all at random - their labels revealed, and the light head (fit_light_head: seeds as
  positives + all labels so far) refitted; F1 on the test rows at 0.5.
- reference: the light head fitted on every pool label ("full-data F1"); always-no F1 is 0 by definition, always-yes
  F1 = 2p / (1 + p) at the test prevalence p.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from triage.data.sources import load_all, load_examples  # noqa: E402
from triage.data.splits import split_of, text_key  # noqa: E402
from triage.models.examples import fit_examples_head, fit_light_head  # noqa: E402
from triage.selection import example_guided  # noqa: E402
from triage.settings import get_settings  # noqa: E402

log = logging.getLogger("new_category")
CATEGORIES = ("spam", "harassment", "hate")
REPORT_AT = (0, 25, 50, 100, 200)


@dataclass(frozen=True)
class Task:
    """One category's pool and test rows: embeddings and 0/1 labels."""

    category: str
    x_pool: np.ndarray
    y_pool: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def embed_cached(texts: list[str], cache: Path) -> np.ndarray:
    """Embeddings (n, 384), cached per text in one .npz so reruns and other categories reuse them."""
    from triage.encoder import Encoder

    store: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as z:
            store = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))
    keys = [text_key(t) for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in store}.items())
    if todo:
        started = time.perf_counter()
        enc = Encoder(batch_size=64)
        for start in range(0, len(todo), 2000):
            chunk = todo[start:start + 2000]
            vectors = enc.encode([t for _, t in chunk])
            store.update({k: v for (k, _), v in zip(chunk, vectors, strict=True)})
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, keys=np.array(list(store)), vectors=np.stack(list(store.values())))
            log.info("embedded %d/%d new texts (%.0fs)", min(start + 2000, len(todo)), len(todo),
                     time.perf_counter() - started)
    return np.stack([store[k] for k in keys])


def build_tasks(categories: tuple[str, ...], pool_size: int, test_size: int, cache: Path) -> list[Task]:
    """Sample each category's pool and test rows (fixed seed) and embed them."""
    datasets = get_settings().datasets_dir
    if datasets is None:
        sys.exit("benchmark: ../shared/datasets not found (set TRIAGE_DATASETS_DIR)")
    examples = load_all(datasets)
    rng = np.random.default_rng(1234)
    rows = []
    for c in categories:
        known = {text_key(ex.text): ex for ex in examples if c in ex.labels and ex.language == "en"}
        items = sorted(known.values(), key=lambda ex: text_key(ex.text))
        pool = [ex for ex in items if split_of(ex.text) != "test"]
        test = [ex for ex in items if split_of(ex.text) == "test"]
        pool = [pool[i] for i in rng.permutation(len(pool))[:pool_size]]
        test = [test[i] for i in rng.permutation(len(test))[:test_size]]
        rows.append((c, pool, test))
    texts = [ex.text for _, pool, test in rows for ex in (*pool, *test)]
    emb = embed_cached(texts, cache)
    tasks, at = [], 0
    for c, pool, test in rows:
        xp = emb[at:at + len(pool)]
        at += len(pool)
        xt = emb[at:at + len(test)]
        at += len(test)
        tasks.append(Task(c, xp, np.array([ex.labels[c] for ex in pool]), xt,
                          np.array([ex.labels[c] for ex in test])))
    return tasks


def f1(y: np.ndarray, predicted: np.ndarray) -> float:
    """Binary F1 of 0/1 arrays (0 when nothing is predicted or present)."""
    tp = float(((predicted == 1) & (y == 1)).sum())
    denom = float((predicted == 1).sum() + (y == 1).sum())
    return 2 * tp / denom if denom else 0.0


def journey(task: Task, background: np.ndarray, seed: int, strategy: str, budget: int, round_size: int,
            n_seeds: int, explore: float = 0.0, weight: float = 0.5) -> dict[int, float]:
    """F1 on the test rows after 0, round_size, 2 * round_size, ... labels."""
    rng = np.random.default_rng(seed)
    positives = np.flatnonzero(task.y_pool == 1)
    seeds = rng.choice(positives, size=n_seeds, replace=False)
    available = np.setdiff1d(np.arange(len(task.y_pool)), seeds)
    head = fit_examples_head(task.category, task.x_pool[seeds], np.zeros((0, task.x_pool.shape[1])), background)
    predict = head.predict_proba
    threshold = head.threshold
    out = {0: f1(task.y_test, (predict(task.x_test) >= threshold).astype(int))}
    labelled = np.zeros(0, dtype=np.int64)
    for done in range(round_size, budget + 1, round_size):
        if strategy == "random":
            pick = rng.choice(available, size=round_size, replace=False)
        else:
            p = predict(task.x_pool[available])
            score = example_guided(p[:, None], np.array([threshold]), weight)
            n_random = round(explore * round_size)
            guided = available[np.argsort(-score, kind="stable")[:round_size - n_random]]
            rest = np.setdiff1d(available, guided)
            pick = np.concatenate([guided, rng.choice(rest, size=n_random, replace=False)])
        labelled = np.concatenate([labelled, pick])
        available = np.setdiff1d(available, pick)
        x = np.concatenate([task.x_pool[seeds], task.x_pool[labelled]])
        y = np.concatenate([np.ones(len(seeds), dtype=np.int64), task.y_pool[labelled]])
        if y.min() == 1:  # no negative yet: keep the examples head
            out[done] = out[done - round_size]
            continue
        light = fit_light_head(task.category, x, y, folds=0)
        predict, threshold = light.predict_proba, light.threshold
        out[done] = f1(task.y_test, (predict(task.x_test) >= threshold).astype(int))
    return out


def labels_to_reach(curve: dict[int, float], target: float) -> int | None:
    """The first label count whose F1 is at or above `target` (None when never)."""
    return next((n for n in sorted(curve) if curve[n] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, first 2 categories")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pool", type=int, default=2500, help="pool rows per category")
    parser.add_argument("--test", type=int, default=1000, help="test rows per category")
    parser.add_argument("--budget", type=int, default=400, help="labels per run (reported up to 200)")
    parser.add_argument("--round-size", type=int, default=25)
    parser.add_argument("--n-seed-examples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--explore", type=float, default=0.2, help="share of each guided round drawn at random")
    parser.add_argument("--weight", type=float, default=0.5, help="example_guided weight of the score vs uncertainty")
    parser.add_argument("--prepare", action="store_true", help="fill the embedding cache and stop")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cats = CATEGORIES[:2] if args.quick else CATEGORIES
    seeds = 1 if args.quick else args.seeds
    cache = args.out / "new_category" / "embeddings.npz"
    started = time.perf_counter()
    tasks = build_tasks(cats, args.pool, args.test, cache)
    # The shipped example tickets calibrate examples heads at serve time; here without the category's own tickets,
    # which a truly new category would not have among them.
    shipped = load_examples()
    shipped_x = embed_cached([ex.text for ex in shipped], cache)
    log.info("data ready in %.0fs", time.perf_counter() - started)
    if args.prepare:
        return
    results: dict[str, dict] = {}
    for task in tasks:
        background = shipped_x[[ex.labels.get(task.category, 0) != 1 for ex in shipped]]
        full = fit_light_head(task.category, task.x_pool, task.y_pool, folds=0)
        full_f1 = f1(task.y_test, (full.predict_proba(task.x_test) >= full.threshold).astype(int))
        prevalence = float(task.y_test.mean())
        curves: dict[str, list[dict[int, float]]] = {"guided": [], "random": []}
        for strategy in curves:
            for s in range(seeds):
                curves[strategy].append(journey(task, background, s, strategy, args.budget, args.round_size,
                                                args.n_seed_examples, args.explore, args.weight))
        mean = {k: {n: float(np.mean([c[n] for c in v])) for n in v[0]} for k, v in curves.items()}
        std = {k: {n: float(np.std([c[n] for c in v])) for n in v[0]} for k, v in curves.items()}
        target = 0.8 * full_f1
        results[task.category] = {
            "pool": len(task.y_pool), "pool_positives": int(task.y_pool.sum()), "test": len(task.y_test),
            "test_positives": int(task.y_test.sum()), "full_f1": full_f1,
            "always_no_f1": 0.0, "always_yes_f1": 2 * prevalence / (1 + prevalence),
            "mean": mean, "std": std,
            "labels_to_80pct": {k: labels_to_reach(v, target) for k, v in mean.items()},
            "random_labels_for_guided_f1": {n: labels_to_reach(mean["random"], mean["guided"][n])
                                            for n in (50, 100, 200)},
        }
        log.info("%s: full %.3f, guided %s, random %s", task.category, full_f1,
                 {n: round(mean["guided"][n], 3) for n in REPORT_AT},
                 {n: round(mean["random"][n], 3) for n in REPORT_AT})
    elapsed = time.perf_counter() - started
    write_outputs(results, args, seeds, elapsed)


def write_outputs(results: dict[str, dict], args: argparse.Namespace, seeds: int, elapsed: float) -> None:
    """results/new_category.json, .md (table) and .png (curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "new_category.json").write_text(json.dumps(
        {"seeds": seeds, "round_size": args.round_size, "seed_examples": args.n_seed_examples,
         "elapsed_s": elapsed, "categories": results}, indent=2, default=str))
    lines = [f"# New-category journey ({seeds} seeds, {args.n_seed_examples} seed examples, rounds of "
             f"{args.round_size} labels; {elapsed:.0f}s)", "",
             "| category | pool (pos) | test (pos) | queue | " + " | ".join(f"F1 @{n}" for n in REPORT_AT)
             + " | full-data F1 | always-yes F1 | labels to 80% of full |",
             "|---|---|---|---|" + "---|" * len(REPORT_AT) + "---|---|---|"]
    for c, r in results.items():
        for k in ("guided", "random"):
            cells = " | ".join(f"{r['mean'][k][n]:.3f} ± {r['std'][k][n]:.3f}" for n in REPORT_AT)
            reach = r["labels_to_80pct"][k]
            lines.append(f"| {c} | {r['pool']} ({r['pool_positives']}) | {r['test']} ({r['test_positives']}) | {k} "
                         f"| {cells} | {r['full_f1']:.3f} | {r['always_yes_f1']:.3f} | "
                         f"{reach if reach is not None else f'> {args.budget}'} |")
    def needed(n: int | None) -> str:
        return str(n) if n is not None else f"> {args.budget}"

    lines += ["", "Random labels needed for the F1 the guided queue reaches with 50 / 100 / 200 labels:", ""]
    lines += [f"- {c}: " + " / ".join(needed(n) for n in r["random_labels_for_guided_f1"].values())
              for c, r in results.items()]
    lines += ["", __doc__ or ""]
    (args.out / "new_category.md").write_text("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), squeeze=False)
    for ax, (c, r) in zip(axes[0], results.items(), strict=True):
        for k, style in (("guided", "-o"), ("random", "--s")):
            xs = sorted(r["mean"][k])
            ys = np.array([r["mean"][k][n] for n in xs])
            sd = np.array([r["std"][k][n] for n in xs])
            ax.plot(xs, ys, style, label=f"{k} queue", markersize=3)
            ax.fill_between(xs, ys - sd, ys + sd, alpha=0.15)
        ax.axhline(r["full_f1"], color="k", lw=1, label="all pool labels")
        ax.axhline(0.8 * r["full_f1"], color="k", lw=1, ls=":", label="80% of that")
        ax.set_title(f"{c} (10 seed examples, then expert labels)")
        ax.set_xlabel("expert labels")
        ax.set_ylabel("test F1")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "new_category.png", dpi=120)
    log.info("wrote %s", args.out / "new_category.md")


if __name__ == "__main__":
    main()
