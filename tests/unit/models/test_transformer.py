"""The transformer classifier: a real (tiny) fine-tune of the shipped encoder, save/load, int8 export parity."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from training.transformer import (
    TransformerParams,
    _early_stopping_subset,
    _sample_train,
    fit,
    plot_reliability,
    trainable_categories,
)
from triage.data.schema import Example
from triage.models.base import Classifier
from triage.models.io import load_classifier
from triage.taxonomy import load_policy

POLICY = load_policy()


def _ex(text: str, labels: dict[str, int], source: str = "s", severity: str | None = None) -> Example:
    return Example(text=text, labels=labels, severity=severity, source=source)


# ------------------------------------------------------------------------------------------- fast units


def test_params_reject_bad_values_and_name_them() -> None:
    with pytest.raises(ValueError, match=r"batch_size=0.*patience=0"):
        TransformerParams(batch_size=0, patience=0)


def test_params_must_leave_a_trainable_encoder_layer() -> None:
    with pytest.raises(ValueError, match="frozen_layers=3"):
        TransformerParams(encoder_layers=3, frozen_layers=3)


def test_params_defaults_are_valid_and_complete() -> None:
    p = TransformerParams()
    assert p.max_length is None and p.threads >= 1 and p.max_train_examples is None and p.encoder_layers == 4


def test_categories_without_enough_known_positives_are_left_out() -> None:
    train = [_ex("a", {"spam": 1}), _ex("b", {"spam": 1}), _ex("c", {"hate": 1}), _ex("d", {"hate": 0})]
    kept, left_out = trainable_categories(train, POLICY, minimum=2)
    assert kept == ["spam"]
    assert left_out["hate"] == 1 and left_out["privacy"] == 0


def test_capped_sample_keeps_every_source_and_rare_positives_first() -> None:
    train = [_ex(f"big {i}", {"spam": 0}, source="big") for i in range(1000)]
    train += [_ex(f"small {i}", {"self_harm": int(i < 5)}, source="small") for i in range(50)]
    params = TransformerParams(max_train_examples=100, source_balance_power=0.5)
    sample = _sample_train(train, ["spam", "self_harm"], params, np.random.default_rng(0))
    assert len(sample) <= 100
    sources = [ex.source for ex in sample]
    # sqrt balancing: the 50-row source gets 100 * √50 / (√50 + √1000) ≈ 18 rows, not its 5% share.
    assert sources.count("small") == int(100 * 50**0.5 / (50**0.5 + 1000**0.5))
    assert sum(ex.labels.get("self_harm", 0) for ex in sample) == 5


def test_early_stopping_subset_keeps_every_rare_positive() -> None:
    rows = [_ex(f"n {i}", {"spam": 0, "self_harm": 0}) for i in range(500)]
    rows += [_ex(f"p {i}", {"self_harm": 1}) for i in range(7)] + [_ex(f"s {i}", {"spam": 1}) for i in range(300)]
    subset = _early_stopping_subset(rows, ["spam", "self_harm"], 50, 100, np.random.default_rng(0))
    assert len(subset) == 50
    assert sum(ex.labels.get("self_harm", 0) for ex in subset) == 7


# ----------------------------------------------------------------------------- slow: the real encoder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_datasets: Path) -> tuple[object, Path, list[str]]:
    """A few optimisation steps of the real encoder on real rows, saved to a temporary directory."""
    from triage.data.sources import load_source

    rows = load_source("openai_moderation", shared_datasets)
    train = rows[:48]
    validation = rows[48:96]
    params = TransformerParams(
        max_length=24, batch_size=8, epochs=1, max_steps=3, max_train_examples=None, max_eval_examples=16,
        min_category_positives=2, calibration_min_positives=3, min_true_positives=1, parity_examples=16,
        eval_batch_size=16, seed=3,
    )
    clf = fit(train, validation, POLICY, params, progress=False)
    directory = tmp_path_factory.mktemp("transformer")
    clf.save(directory)
    texts = [ex.text for ex in rows[100:148]]
    return clf, directory, texts


@pytest.mark.slow
def test_fit_trains_a_calibrated_classifier_with_a_complete_card(trained: tuple) -> None:
    clf, _, texts = trained
    card = clf.card
    assert isinstance(clf, Classifier)
    assert card.kind == "transformer" and card.severity_levels == list(POLICY.severity_names)
    assert card.categories and set(card.categories) <= set(POLICY.category_names)
    assert set(card.thresholds) == set(card.categories)
    assert card.extra["steps"] == 3 and card.extra["training_seconds"] > 0
    assert card.extra["max_length"] == 24
    assert {"val_ece_before", "val_ece_after", "val_macro_f1"} <= set(card.metrics)
    assert set(card.extra["precision_thresholds"]) == set(card.categories)
    # The export measured the feed-forward inputs on validation texts; the pretrained encoder has outlier channels.
    fp32_channels = card.extra["int8_fp32_input_channels"]
    layers = range(TransformerParams().encoder_layers or 6)
    assert set(fp32_channels) == {f"layer.{k}.{m}.dense" for k in layers for m in ("intermediate", "output")}
    assert any(fp32_channels.values())
    pred = clf.predict(texts)
    assert pred.categories.shape == (len(texts), len(card.categories))
    assert pred.severity.shape == (len(texts), len(card.severity_levels))
    assert np.all((pred.categories >= 0) & (pred.categories <= 1))
    assert np.allclose(pred.severity.sum(axis=1), 1.0)
    assert clf.predict([]).categories.shape == (0, len(card.categories))


@pytest.mark.slow
def test_frozen_layers_keep_their_pretrained_weights_and_the_rest_learn(trained: tuple) -> None:
    import torch

    from training.transformer import encoder_path
    from triage.models.transformer import build_network

    clf, _, _ = trained
    params = TransformerParams()
    tuned = clf.net.state_dict()
    fresh = build_network(encoder_path(params), 2, 5, layers=params.encoder_layers).state_dict()
    assert params.encoder_layers is not None and 0 < params.frozen_layers < params.encoder_layers
    assert torch.equal(tuned["encoder.embeddings.word_embeddings.weight"],
                       fresh["encoder.embeddings.word_embeddings.weight"])
    for k in range(params.encoder_layers):
        name = f"encoder.encoder.layer.{k}.output.dense.weight"
        assert torch.equal(tuned[name], fresh[name]) == (k < params.frozen_layers), name


@pytest.mark.slow
def test_save_then_load_gives_the_same_predictions(trained: tuple) -> None:
    clf, directory, texts = trained
    assert {"classifier.json", "model.int8.onnx", "tokenizer.json", "calibration.json", "heads.safetensors"} <= {
        p.name for p in directory.iterdir()
    }
    from triage.models.transformer import TransformerClassifier

    loaded = load_classifier(directory)
    assert isinstance(loaded, TransformerClassifier) and loaded.backend == "onnx"
    assert loaded.card.thresholds == clf.card.thresholds and loaded.card.categories == clf.card.categories
    assert loaded.calibration == clf.calibration
    np.testing.assert_allclose(loaded.predict(texts).categories, clf.predict(texts).categories, atol=1e-6)
    # A text scores the same alone or in a batch (the int8 runtime runs one text per call).
    one = np.vstack([loaded.predict([t]).categories for t in texts[:5]])
    np.testing.assert_allclose(one, loaded.predict(texts[:5]).categories, atol=1e-6)
    # Texts its caller normalised already (the combined model's transformer view) score as the raw texts do.
    from triage.text import normalize_all

    prepared = loaded.predict_prepared(normalize_all(texts))
    np.testing.assert_allclose(prepared.categories, loaded.predict(texts).categories, atol=1e-6)


@pytest.mark.slow
def test_int8_export_matches_fp32_torch(trained: tuple) -> None:
    from triage.models.transformer import TransformerClassifier

    _, directory, texts = trained
    int8 = TransformerClassifier.load(directory, backend="onnx")
    fp32 = TransformerClassifier.load(directory, backend="torch")
    assert fp32.backend == "torch"
    p8, p32 = int8.predict(texts), fp32.predict(texts)
    assert float(np.max(np.abs(p8.categories - p32.categories))) < 0.05
    assert float(np.max(np.abs(p8.severity - p32.severity))) < 0.05
    thresholds = np.array([int8.card.thresholds[c] for c in int8.card.categories])
    same = (p8.categories >= thresholds) == (p32.categories >= thresholds)
    # After three steps most scores sit near their thresholds, where int8 noise may flip a decision; where fp32
    # decides with a margin of 0.02, int8 must decide the same way.
    clear = np.abs(p32.categories - thresholds) > 0.02
    assert clear.sum() >= 100, f"only {clear.sum()} cells decided with a margin: the check would say little"
    assert same[clear].mean() >= 0.99, f"{same.mean():.3f} of all cells, {same[clear].mean():.3f} of clear ones"
    # Calls longer than batch_size are sorted by length internally; answers must come back in caller order.
    assert len(texts) > fp32.batch_size
    one_by_one = np.vstack([fp32.predict([t]).categories for t in texts])
    np.testing.assert_allclose(p32.categories, one_by_one, atol=1e-4)


@pytest.mark.slow
def test_serving_load_does_not_import_torch(trained: tuple) -> None:
    import subprocess

    _, directory, _ = trained
    code = (
        "import sys; from triage.models.io import load_classifier; "
        f"c = load_classifier({str(directory)!r}); c.predict(['hello there']); "
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_reliability_diagram_is_written(trained: tuple, tmp_path: Path) -> None:
    clf, _, _ = trained
    png = plot_reliability(clf.card, tmp_path / "reliability.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_no_temporary_export_files_are_left_in_the_working_directory(trained: tuple) -> None:
    assert not list(Path.cwd().glob("*.onnx")) and not list(Path.cwd().glob("*.onnx.data"))
