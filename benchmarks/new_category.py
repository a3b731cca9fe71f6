"""The new-category journey: a category starts from 10 seed examples, then learns from rounds of 25 expert labels.

One command: `nice -n 10 .venv/bin/python benchmarks/new_category.py` (`--quick`: 2 seeds, 2 categories;
`--prevalence 0.02`: a rare category, see below) -> results/new_category.{json,md,png}; about 2 minutes once the
embedding cache is filled (results/new_category/).

Set-up:
- per category (spam, harassment, hate), the English rows of the shared datasets whose source labels that category
  (triage.data.sources; unknown labels are left out, never taken as negatives); pool = a random sample of its
  train+validation rows, test = a random sample of its fixed test split (triage.data.splits), drawn per category.
  Texts are embedded once by the frozen encoder (triage/encoder.py) and cached.
- "new": no model has seen a label of the category. 10 random pool positives become the policy's seed examples.
- round 0: the examples head of triage/models/examples.py (calibrated on the shipped tickets as unrelated texts, as at
  serve time, minus those labelled with the category), F1 at its threshold on the test rows.
- each round: 25 pool rows are chosen - "guided": the first 25 of the review queue's own order,
  triage.selection.ExampleGuided (the strategy `example_guided` builds for a seeded policy: the head's score mixed
  with uncertainty at its threshold, plus the random audit picks, `--explore` per ticket) on the current head's
  probabilities; "random": uniformly - their labels revealed, and the light head (fit_light_head: seeds as
  positives + all labels so far + the unrelated background texts as weak negatives, as `triage retrain
  --heads-only` fits it) refitted once the policy's default
  rules allow it (30 expert labels, 5 positives with the seeds, a negative; before that the examples head goes on
  scoring, so F1 @25 is the examples head's); F1 on the test rows at 0.5.
- reference: the light head fitted on every pool label ("full-data F1"); always-no F1 is 0 by definition, always-yes
  F1 = 2p / (1 + p) at the test prevalence p.
- the comparison, per seed (5 by default): labels needed to reach 80% and 90% of the full-data F1 (interpolated
  between rounds), their ratio guided/random, the area under the learning curve (mean F1 over rounds 0-200), and
  the random labels needed for the mean F1 the guided queue has at 25, 50, 100, 200 labels. "The guided queue needs
  at most half the labels" holds where that ratio is at most 0.5.
- `--prevalence P` (e.g. 0.02): a new category in a real ticket stream is rare, but the sources are built around
  theirs (pool prevalence: spam 17%, harassment 12%, hate 23%), so random rounds find positives too. With P, each
  seed draws its own rare pool: a random share of the pool positives kept so that they make P of the pool, every
  pool negative kept (`rarefy`); the seed examples come from the kept positives; guided and random rounds of a seed
  share that pool; the test rows are unchanged, so test F1 stays comparable. "full" stays the head on every label of
  the natural pool (what the category can reach); the head on every label of the rare pool is reported beside it.
  -> results/new_category_p<P>.{json,md,png} (the natural run's files stay); no self_harm check.
- `--diverse N`: each guided round is spread by k-center over the queue's first N x 25 rows (triage.selection.Diverse)
  -> results/new_category[_p<P>]_diverseN.*. The review queue scores tickets one at a time as they arrive, with no
  round to spread, so this measures what a batch step would buy, not the queue's order.
- self_harm is measured but not a category of the journey: its positives are 92% one source (reddit_cssrs: long
  suicide-forum threads, words replaced by medical concepts) against mostly short OpenAI prompts as negatives, so
  on its test split "yes iff the text comes from reddit_cssrs" already scores about the full-data F1, and the head
  fitted on every pool label does poorly on the team's own short self-harm tickets; see `self_harm_check`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from triage.data.sources import load_all, load_examples  # noqa: E402
from triage.data.splits import split_of, text_key  # noqa: E402
from triage.models.examples import fit_examples_head, fit_light_head  # noqa: E402
from triage.selection import EXPLORE, Diverse, ExampleGuided, Strategy  # noqa: E402
from triage.settings import get_settings  # noqa: E402
from triage.taxonomy import NewCategories  # noqa: E402

log = logging.getLogger("new_category")
RULES = NewCategories()  # the policy's defaults: a light head from 30 expert labels and 5 positives on
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
    rows = []
    for c in categories:
        rng = np.random.default_rng(zlib.crc32(c.encode()))  # per category: the same rows whatever else runs
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


def rarefy(task: Task, prevalence: float, rng: np.random.Generator) -> Task:
    """The task with a random share of its pool positives kept so that the pool's prevalence is `prevalence`:
    every pool negative and every test row stay. ValueError when the pool has too few positives for it."""
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence must be in (0, 1), got {prevalence}")
    positives, negatives = np.flatnonzero(task.y_pool == 1), np.flatnonzero(task.y_pool == 0)
    wanted = round(prevalence * len(negatives) / (1.0 - prevalence))
    if wanted > len(positives):
        raise ValueError(f"{task.category}: a pool prevalence of {prevalence} needs {wanted} positives beside its "
                         f"{len(negatives)} negatives, the pool has {len(positives)} "
                         f"(natural prevalence {len(positives) / len(task.y_pool):.3f})")
    keep = np.sort(np.concatenate([negatives, rng.choice(positives, size=wanted, replace=False)]))
    return dataclasses.replace(task, x_pool=task.x_pool[keep], y_pool=task.y_pool[keep])


def f1(y: np.ndarray, predicted: np.ndarray) -> float:
    """Binary F1 of 0/1 arrays (0 when nothing is predicted or present)."""
    tp = float(((predicted == 1) & (y == 1)).sum())
    denom = float((predicted == 1).sum() + (y == 1).sum())
    return 2 * tp / denom if denom else 0.0


def journey(task: Task, background: np.ndarray, seed: int, strategy: str, budget: int, round_size: int,
            n_seeds: int, explore: float = EXPLORE, weight: float = 0.5, diverse: int = 0) -> dict[int, float]:
    """F1 on the test rows after 0, round_size, 2 * round_size, ... labels.

    "guided" rounds are the review queue's order: triage.selection.ExampleGuided (as get_strategy builds it for a
    seeded policy) on the current head's probabilities, its first `round_size` rows; "random" rounds are uniform.
    `diverse` > 0: a guided round is instead spread by k-center over the queue's first `diverse * round_size`
    (triage.selection.Diverse), a batch step the review queue itself does not take.
    """
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
            queue: Strategy = ExampleGuided(columns=(0,), thresholds=(threshold,), weight=weight, explore=explore)
            if diverse:
                queue = Diverse(queue, candidates=diverse)
            p = predict(task.x_pool[available])[:, None]
            pick = available[queue.select(p, np.zeros((len(p), 1)), round_size, task.x_pool[available], rng)]
        labelled = np.concatenate([labelled, pick])
        available = np.setdiff1d(available, pick)
        x = np.concatenate([task.x_pool[seeds], task.x_pool[labelled]])
        y = np.concatenate([np.ones(len(seeds), dtype=np.int64), task.y_pool[labelled]])
        if len(labelled) < RULES.min_labels_for_head or y.sum() < RULES.min_positives_for_head or y.min() == 1:
            out[done] = out[done - round_size]  # as `triage retrain --heads-only`: too few labels, the examples head
            continue
        light = fit_light_head(task.category, x, y, folds=0, background=background)
        predict, threshold = light.predict_proba, light.threshold
        out[done] = f1(task.y_test, (predict(task.x_test) >= threshold).astype(int))
    return out


def labels_to_reach(curve: dict[int, float], target: float) -> float | None:
    """Labels at which F1 first reaches `target`, linearly interpolated between rounds (None when never)."""
    xs = sorted(curve)
    if curve[xs[0]] >= target:
        return float(xs[0])
    for a, b in itertools.pairwise(xs):
        if curve[b] >= target:
            return a + (b - a) * (target - curve[a]) / (curve[b] - curve[a])
    return None


def spread(values: list[float | None], budget: int) -> dict[str, object]:
    """Mean and standard deviation over seeds; a seed that never got there counts as the budget (a lower
    bound, flagged by `censored`)."""
    got = np.array([budget if v is None else v for v in values], dtype=np.float64)
    return {"per_seed": values, "mean": float(got.mean()), "std": float(got.std()),
            "censored": sum(v is None for v in values)}


def compare(curves: dict[str, list[dict[int, float]]], full_f1: float, budget: int, upto: int) -> dict[str, object]:
    """The guided-vs-random comparison: labels to reach 80% and 90% of the full-data F1 (per seed), the area
    under the mean learning curve up to `upto` labels (mean F1 over its rounds), and the random labels needed for
    the mean F1 the guided queue has at 25, 50, 100 and 200 labels."""
    out: dict[str, object] = {}
    for share in (0.8, 0.9):
        per = {k: spread([labels_to_reach(c, share * full_f1) for c in v], budget) for k, v in curves.items()}
        g, r = float(per["guided"]["mean"]), float(per["random"]["mean"])  # type: ignore[arg-type]
        out[f"labels_to_{round(share * 100)}pct"] = {**per, "guided_over_random": g / r if r else None}
    aulc = {k: [float(np.mean([c[n] for n in c if n <= upto])) for c in v] for k, v in curves.items()}
    out["aulc"] = {k: {"mean": float(np.mean(a)), "std": float(np.std(a))} for k, a in aulc.items()}
    mean = {k: {n: float(np.mean([c[n] for c in v])) for n in v[0]} for k, v in curves.items()}
    matched = {}
    for n in (m for m in (25, 50, 100, 200) if m in mean["guided"]):
        needed = labels_to_reach(mean["random"], mean["guided"][n])
        matched[n] = {"guided_f1": mean["guided"][n], "random_labels": needed,
                      "guided_over_random": (n / needed) if needed else None}
    out["random_labels_for_guided_f1"] = matched
    return out


def self_harm_check(cache: Path, shipped: list, shipped_x: np.ndarray, background: np.ndarray) -> dict[str, object]:
    """Why self_harm is not one of the benchmark's categories, measured: its pool and test rows by source, F1 of
    "yes iff the text comes from reddit_cssrs" on the test split, the examples head (10 seeds) and the head on
    every pool label on that split, and the same full head on the team's own tickets (never in the pool)."""
    task = build_tasks(("self_harm",), 2500, 1000, cache)[0]
    datasets = get_settings().datasets_dir
    examples = load_all(datasets) if datasets is not None else []
    by_key = {text_key(ex.text): ex.source for ex in examples if "self_harm" in ex.labels and ex.language == "en"}
    rows = [ex for ex in examples if "self_harm" in ex.labels and ex.language == "en"]
    sources: dict[str, dict[str, int]] = {}
    for ex in rows:
        part = "test" if split_of(ex.text) == "test" else "pool"
        d = sources.setdefault(f"{ex.source}/{part}", {"positives": 0, "negatives": 0})
        d["positives" if ex.labels["self_harm"] == 1 else "negatives"] += 1
    test_texts = sorted({text_key(ex.text): ex for ex in rows if split_of(ex.text) == "test"})
    rule = np.array([by_key[k] == "reddit_cssrs" for k in test_texts], dtype=np.int64)
    test_y = np.array([next(ex for ex in rows if text_key(ex.text) == k).labels["self_harm"] for k in test_texts])
    full = fit_light_head("self_harm", task.x_pool, task.y_pool, folds=0)
    rng = np.random.default_rng(0)
    zero = []
    for _ in range(5):
        seeds = rng.choice(np.flatnonzero(task.y_pool == 1), size=10, replace=False)
        head = fit_examples_head("self_harm", task.x_pool[seeds], np.zeros((0, task.x_pool.shape[1])), background)
        zero.append(f1(task.y_test, (head.predict_proba(task.x_test) >= head.threshold).astype(int)))
    team_y = np.array([ex.labels.get("self_harm", 0) for ex in shipped])
    team_p = np.array(team_y.mean())
    return {
        "rows_by_source": sources,
        "test_split": {"rows": len(task.y_test), "positives": int(task.y_test.sum()),
                       "source_rule_f1": f1(test_y, rule),
                       "examples_head_f1_0_labels": {"mean": float(np.mean(zero)), "std": float(np.std(zero))},
                       "full_f1": f1(task.y_test, (full.predict_proba(task.x_test) >= 0.5).astype(int))},
        "team_tickets": {"rows": len(team_y), "positives": int(team_y.sum()),
                         "full_f1": f1(team_y, (full.predict_proba(shipped_x) >= 0.5).astype(int)),
                         "always_yes_f1": float(2 * team_p / (1 + team_p))},
    }


def run_category(task: Task, background: np.ndarray, args: argparse.Namespace, seeds: int) -> dict[str, object]:
    """Both queues' journeys over `seeds` seeds, the full-data reference and the comparison, for one category.

    With `args.prevalence`, each seed draws its own rare pool (rarefy); guided and random rounds of a seed share it.
    The reference stays the head on every label of the natural pool: what the category can reach.
    """
    full = fit_light_head(task.category, task.x_pool, task.y_pool, folds=0, background=background)
    full_f1 = f1(task.y_test, (full.predict_proba(task.x_test) >= full.threshold).astype(int))
    curves: dict[str, list[dict[int, float]]] = {"guided": [], "random": []}
    rare_full = []
    for s in range(seeds):
        pool = task if args.prevalence is None else rarefy(task, args.prevalence, np.random.default_rng(10_000 + s))
        if args.prevalence is not None:
            head = fit_light_head(task.category, pool.x_pool, pool.y_pool, folds=0, background=background)
            rare_full.append(f1(task.y_test, (head.predict_proba(task.x_test) >= head.threshold).astype(int)))
        for strategy, runs in curves.items():
            runs.append(journey(pool, background, s, strategy, args.budget, args.round_size, args.n_seed_examples,
                                args.explore, args.weight, args.diverse))
    prevalence = float(task.y_test.mean())
    return {
        "pool": len(pool.y_pool), "pool_positives": int(pool.y_pool.sum()), "natural_pool": len(task.y_pool),
        "natural_pool_positives": int(task.y_pool.sum()), "test": len(task.y_test),
        "test_positives": int(task.y_test.sum()), "full_f1": full_f1,
        "full_f1_rare_pool": None if not rare_full else {"mean": float(np.mean(rare_full)),
                                                          "std": float(np.std(rare_full))},
        "always_no_f1": 0.0, "always_yes_f1": 2 * prevalence / (1 + prevalence),
        "mean": {k: {n: float(np.mean([c[n] for c in v])) for n in v[0]} for k, v in curves.items()},
        "std": {k: {n: float(np.std([c[n] for c in v])) for n in v[0]} for k, v in curves.items()},
        "curves": curves, **compare(curves, full_f1, args.budget, max(REPORT_AT)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, first 2 categories")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--pool", type=int, default=2500, help="pool rows per category")
    parser.add_argument("--test", type=int, default=1000, help="test rows per category")
    parser.add_argument("--budget", type=int, default=400, help="labels per run (reported up to 200)")
    parser.add_argument("--round-size", type=int, default=25)
    parser.add_argument("--n-seed-examples", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--explore", type=float, default=EXPLORE,
                        help="the queue's audit share: each ticket goes first at random with this probability")
    parser.add_argument("--weight", type=float, default=0.5, help="example_guided weight of the score vs uncertainty")
    parser.add_argument("--prepare", action="store_true", help="fill the embedding cache and stop")
    parser.add_argument("--diverse", type=int, default=0,
                        help="spread each guided round by k-center over the queue's first N x round-size rows "
                             "(a batch step the review queue does not take); writes results/new_category*_diverseN.*")
    parser.add_argument("--prevalence", type=float, default=None,
                        help="subsample each category's pool positives to this pool prevalence (e.g. 0.02); "
                             "default: the sources' natural rate. Writes results/new_category_p<P>.*")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cats = CATEGORIES[:2] if args.quick else CATEGORIES
    seeds = 2 if args.quick else args.seeds
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
        results[task.category] = r = run_category(task, background, args, seeds)
        log.info("%s: full %.3f | guided %s | random %s | labels to 90%%: guided %.0f, random %.0f", task.category,
                 r["full_f1"], {n: round(r["mean"]["guided"][n], 3) for n in REPORT_AT},
                 {n: round(r["mean"]["random"][n], 3) for n in REPORT_AT},
                 r["labels_to_90pct"]["guided"]["mean"], r["labels_to_90pct"]["random"]["mean"])
    check = None
    if not args.quick and args.prevalence is None:  # self_harm's check does not depend on the pool's prevalence
        check = self_harm_check(cache, shipped, shipped_x,
                                shipped_x[[ex.labels.get("self_harm", 0) != 1 for ex in shipped]])
        log.info("self_harm: %s", check)
    elapsed = time.perf_counter() - started
    write_outputs(results, check, args, seeds, elapsed)


def output_stem(prevalence: float | None, diverse: int) -> str:
    """Result file name: new_category, new_category_p0.02, new_category_diverse4, new_category_p0.02_diverse4."""
    return ("new_category" + ("" if prevalence is None else f"_p{prevalence:g}")
            + (f"_diverse{diverse}" if diverse else ""))


def _labels(d: dict) -> str:
    """'mean ± sd' of labels needed over seeds, '>' when some seed never got there within the budget."""
    return f"{'>' if d['censored'] else ''}{d['mean']:.0f} ± {d['std']:.0f}"


def write_outputs(results: dict[str, dict], check: dict | None, args: argparse.Namespace, seeds: int,
                  elapsed: float) -> None:
    """results/new_category.json, .md (tables) and .png (curves); new_category_p<P>.* with --prevalence P."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    stem = output_stem(args.prevalence, args.diverse)
    (args.out / f"{stem}.json").write_text(json.dumps(
        {"seeds": seeds, "pool_prevalence": args.prevalence or "natural", "diverse": args.diverse,
         "round_size": args.round_size,
         "seed_examples": args.n_seed_examples, "budget": args.budget,
         "explore": args.explore, "weight": args.weight, "elapsed_s": elapsed, "categories": results,
         "self_harm_check": check}, indent=2, default=str))
    setting = ("natural pool prevalence" if args.prevalence is None else
               f"pool positives subsampled to a prevalence of {args.prevalence:g}, drawn per seed; 'full' is the head "
               "on every label of the natural pool")
    if args.diverse:
        setting += f"; guided rounds spread by k-center over the queue's first {args.diverse} x {args.round_size}"
    lines = [f"# New-category journey ({seeds} seeds, {args.n_seed_examples} seed examples, rounds of "
             f"{args.round_size} labels, queue audit share {args.explore}; {setting}; {elapsed:.0f}s)", "",
             "| category | pool (pos) | test (pos) | queue | " + " | ".join(f"F1 @{n}" for n in REPORT_AT)
             + " | full-data F1 | always-yes F1 |",
             "|---|---|---|---|" + "---|" * len(REPORT_AT) + "---|---|"]
    for c, r in results.items():
        for k in ("guided", "random"):
            cells = " | ".join(f"{r['mean'][k][n]:.3f} ± {r['std'][k][n]:.3f}" for n in REPORT_AT)
            lines.append(f"| {c} | {r['pool']} ({r['pool_positives']}) | {r['test']} ({r['test_positives']}) | {k} "
                         f"| {cells} | {r['full_f1']:.3f} | {r['always_yes_f1']:.3f} |")
    rare = {c: r["full_f1_rare_pool"] for c, r in results.items() if r["full_f1_rare_pool"] is not None}
    if rare:
        lines += ["", "The head on every label of the rare pool (what the rare pool itself could teach), test F1: "
                  + ", ".join(f"{c} {d['mean']:.3f} ± {d['std']:.3f}" for c, d in rare.items()) + "."]
    lines += ["", "Labels needed (mean ± sd over seeds, interpolated between rounds; `>`: a seed never got there "
              f"within {args.budget}, counted as {args.budget}) and area under the learning curve (mean F1 over the "
              f"rounds 0-{max(REPORT_AT)}):", "",
              "| category | to 80% of full: guided / random (ratio) | to 90% of full: guided / random (ratio) | "
              "AULC guided / random |", "|---|---|---|---|"]
    for c, r in results.items():
        cells = []
        for key in ("labels_to_80pct", "labels_to_90pct"):
            d = r[key]
            ratio = d["guided_over_random"]
            cells.append(f"{_labels(d['guided'])} / {_labels(d['random'])} "
                         f"({'n/a' if ratio is None else f'{ratio:.2f}'})")
        a = r["aulc"]
        cells.append(f"{a['guided']['mean']:.3f} ± {a['guided']['std']:.3f} / "
                     f"{a['random']['mean']:.3f} ± {a['random']['std']:.3f}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Random labels needed for the mean F1 the guided queue has at 25 / 50 / 100 / 200 labels "
              "(ratio guided/random; at most 0.5 = the claim holds there):", ""]
    for c, r in results.items():
        parts = []
        for n, m in r["random_labels_for_guided_f1"].items():
            needed = m["random_labels"]
            parts.append(f"{n}: {'> ' + str(args.budget) if needed is None else f'{needed:.0f}'}"
                         + ("" if m["guided_over_random"] is None else f" ({m['guided_over_random']:.2f})"))
        lines.append(f"- {c}: " + ", ".join(parts))
    if check is not None:
        t, team = check["test_split"], check["team_tickets"]
        lines += ["", "self_harm (why not a benchmark category): rows by source "
                  + json.dumps(check["rows_by_source"]) + f"; on its test split ({t['rows']} rows, "
                  f"{t['positives']} positive) 'yes iff from reddit_cssrs' has F1 {t['source_rule_f1']:.3f}, the "
                  f"examples head with 10 seeds and no label {t['examples_head_f1_0_labels']['mean']:.3f}, the head "
                  f"on every pool label {t['full_f1']:.3f}; on the team's own tickets ({team['rows']}, "
                  f"{team['positives']} self-harm) that head has F1 {team['full_f1']:.3f} (always-yes "
                  f"{team['always_yes_f1']:.3f})."]
    lines += ["", __doc__ or ""]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
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
        ax.axhline(0.9 * r["full_f1"], color="k", lw=1, ls="-.", label="90% of that")
        ax.set_title(f"{c} ({args.n_seed_examples} seed examples, then expert labels)")
        ax.set_xlabel("expert labels")
        ax.set_ylabel("test F1")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / f"{stem}.png", dpi=120)
    log.info("wrote %s", args.out / f"{stem}.md")
    print("\n".join(lines[:lines.index("") + 2 * len(results) + 3]))


if __name__ == "__main__":
    main()
