"""Build a cascade from two registered models: bands fitted on the validation split, logged and registered."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from training.distill import DistillParams
from training.distill import fit as distilled
from training.pipeline import load_training_data
from triage.adapters import mlflow_registry as registry
from triage.cascade import CascadeFit, fit_cascade
from triage.data.schema import label_matrix
from triage.data.splits import split_examples
from triage.models.base import Classifier
from triage.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CascadeResult:
    """The fitted cascade and where it was registered."""

    fit: CascadeFit
    run_id: str
    version: str


def build(settings: Settings, fast_version: str | None, full_version: str, alias: str | None = None,
          min_agreement: float = 0.98, max_auprc_drop: float = 0.005, spare: float = 0.0,
          distill: DistillParams | None = None) -> CascadeResult:
    """Cascade of registered `fast_version` and `full_version`, fitted on the validation split, registered.

    Without a `fast_version`, the cheap model is distilled from the full one on the training split (`distill`).
    """
    if (fast_version is None) == (distill is None):
        raise ValueError("give either a registered cheap model or distillation parameters, not both")
    policy = settings.load_policy()
    full = registry.load_version(settings, full_version)
    examples, origin = load_training_data(settings)
    splits = split_examples(examples)
    validation = splits["validation"]
    fast_classifier: Classifier
    if distill is not None:
        fast_classifier = distilled(full.classifier, splits["train"], validation, policy, distill)
        fast_name = f"distilled from v{full_version}"
    else:
        fast_classifier = registry.load_version(settings, str(fast_version)).classifier
        fast_name = str(fast_version)
    texts = [ex.text for ex in validation]
    labels = label_matrix(validation, full.classifier.card.categories)
    fitted = fit_cascade(fast_classifier, full.classifier, texts, labels, policy, min_agreement, max_auprc_drop,
                         spare)
    with registry.run(settings, name="cascade", tags={"model_kind": "cascade"}) as run_id:
        if distill is not None:
            registry.log_params({f"distill.{k}": v for k, v in distill.as_dict().items()})
            registry.log_metrics({k: float(fast_classifier.card.extra[k])
                                  for k in ("teacher_seconds", "train_seconds", "train_examples")}, prefix="distill.")
        registry.log_params({"fast_version": fast_name, "full_version": full_version, "data_origin": origin,
                             "n_validation": len(validation), "min_agreement": min_agreement,
                             "max_auprc_drop": max_auprc_drop, "spare": spare, "alpha": fitted.alpha})
        registry.log_metrics({"expected_full_share": fitted.full_share, "agreement": fitted.agreement,
                              "macro_auprc_full": fitted.auprc_full, "macro_auprc_cascade": fitted.auprc_cascade},
                             prefix="validation.")
        registry.log_dict({"tried": fitted.tried}, "cascade/bands_tried.json")
        client = registry.configure(settings)
        uri = registry.log_classifier(fitted.classifier, texts[:3] or ["example"])
        version = registry.register(client, uri, settings.mlflow.model_name,
                                    tags={"model_kind": "cascade", "run_id": run_id, "fast_version": fast_name,
                                          "full_version": full_version})
        if alias:
            registry.set_alias(client, settings.mlflow.model_name, alias, version)
    log.info("registered cascade v%s (fast %s, full v%s): %.1f%% full path on validation", version, fast_name,
             full_version, 100 * fitted.full_share)
    return CascadeResult(fitted, run_id, version)
