"""Build a cascade from two registered models: bands fitted on the validation split, logged and registered."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from training.pipeline import load_training_data
from triage.adapters import mlflow_registry as registry
from triage.cascade import CascadeFit, fit_cascade
from triage.data.schema import label_matrix
from triage.data.splits import split_examples
from triage.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CascadeResult:
    """The fitted cascade and where it was registered."""

    fit: CascadeFit
    run_id: str
    version: str


def build(settings: Settings, fast_version: str, full_version: str, alias: str | None = None,
          min_agreement: float = 0.98, max_auprc_drop: float = 0.005, spare: float = 0.0) -> CascadeResult:
    """Cascade of registered `fast_version` and `full_version`, fitted on the validation split, registered."""
    policy = settings.load_policy()
    fast = registry.load_version(settings, fast_version)
    full = registry.load_version(settings, full_version)
    examples, origin = load_training_data(settings)
    validation = split_examples(examples)["validation"]
    texts = [ex.text for ex in validation]
    labels = label_matrix(validation, full.classifier.card.categories)
    fitted = fit_cascade(fast.classifier, full.classifier, texts, labels, policy, min_agreement, max_auprc_drop,
                         spare)
    with registry.run(settings, name="cascade", tags={"model_kind": "cascade"}) as run_id:
        registry.log_params({"fast_version": fast_version, "full_version": full_version, "data_origin": origin,
                             "n_validation": len(validation), "min_agreement": min_agreement,
                             "max_auprc_drop": max_auprc_drop, "spare": spare, "alpha": fitted.alpha})
        registry.log_metrics({"expected_full_share": fitted.full_share, "agreement": fitted.agreement,
                              "macro_auprc_full": fitted.auprc_full, "macro_auprc_cascade": fitted.auprc_cascade},
                             prefix="validation.")
        registry.log_dict({"tried": fitted.tried}, "cascade/bands_tried.json")
        client = registry.configure(settings)
        uri = registry.log_classifier(fitted.classifier, texts[:3] or ["example"])
        version = registry.register(client, uri, settings.mlflow.model_name,
                                    tags={"model_kind": "cascade", "run_id": run_id, "fast_version": fast_version,
                                          "full_version": full_version})
        if alias:
            registry.set_alias(client, settings.mlflow.model_name, alias, version)
    log.info("registered cascade v%s (fast v%s, full v%s): %.1f%% full path on validation", version, fast_version,
             full_version, 100 * fitted.full_share)
    return CascadeResult(fitted, run_id, version)
