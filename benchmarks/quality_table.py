"""Quality table: the registered models (and the transformer's fp32 twin) on the same test split, into MLflow.

Usage: .venv/bin/python benchmarks/quality_table.py [--aliases champion challenger]
Loads each alias from the registry, evaluates it on the test split of the training data (shared datasets + shipped
tickets), also the transformer with the PyTorch fp32 backend (int8 vs fp32), prints a Markdown table of per-category
F1, macro-F1, severity accuracy and MAE, ECE (overall and per source), writes results/quality_table.{md,json} and
logs both to MLflow as a `quality-table` run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.evaluate import evaluate
from training.pipeline import load_training_data
from triage.adapters import mlflow_registry as registry
from triage.data.splits import split_examples
from triage.models.base import Classifier
from triage.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
SOURCES_SHOWN = ("openai_moderation", "davidson", "olid", "sms_spam", "smishing", "told_br", "korean_hate")


def _fp32_twin(classifier: Classifier) -> Classifier | None:
    """The same transformer weights on the PyTorch fp32 path (None for other kinds)."""
    if classifier.card.kind != "transformer":
        return None
    from triage.models.transformer import TransformerClassifier

    tmp = Path(tempfile.mkdtemp(prefix="fp32-"))
    classifier.save(tmp)
    return TransformerClassifier.load(tmp, backend="torch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--aliases", nargs="+", default=["champion", "challenger"])
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quality_table")
    args = parser.parse_args()

    settings = get_settings()
    policy = settings.load_policy()
    examples, origin = load_training_data(settings)
    test = split_examples(examples)["test"]
    rows: dict[str, dict[str, float]] = {}
    for alias in args.aliases:
        loaded = registry.load_model(settings, alias)
        kind = loaded.classifier.card.kind
        label = f"{kind} v{loaded.version} (@{alias})" + (" int8" if kind == "transformer" else "")
        rows[label] = evaluate(loaded.classifier, test, policy)
        twin = _fp32_twin(loaded.classifier)
        if twin is not None:
            rows[f"{kind} v{loaded.version} (@{alias}) fp32"] = evaluate(twin, test, policy)

    cats = [c for c in policy.category_names if any(f"{c}_f1" in m for m in rows.values())]
    head = ["model", *[f"{c} F1" for c in cats], "macro-F1", "sev acc", "sev MAE", "ECE",
            *[f"{s} macro-F1" for s in SOURCES_SHOWN]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(m: dict[str, float], key: str) -> str:
        return "-" if key not in m else f"{m[key]:.3f}"

    for label, m in rows.items():
        cells = [label, *[fmt(m, f"{c}_f1") for c in cats], fmt(m, "macro_f1"), fmt(m, "severity_accuracy"),
                 fmt(m, "severity_mae"), fmt(m, "ece"), *[fmt(m, f"{s}/macro_f1") for s in SOURCES_SHOWN]]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    note = f"Test split: {len(test)} examples from {origin}."
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(table + "\n\n" + note + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    with registry.run(settings, name="quality-table", tags={"kind": "report"}):
        registry.log_dict({"rows": rows, "test_examples": len(test)}, "quality_table.json")
        registry.log_text(table + "\n\n" + note + "\n", "quality_table.md")
    print(table)
    print(note)


if __name__ == "__main__":
    main()
