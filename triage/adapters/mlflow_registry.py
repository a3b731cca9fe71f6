"""MLflow adapter: tracking runs, logging a classifier as one pyfunc model, and the alias-based registry."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.pyfunc import PythonModel, PythonModelContext

from triage.errors import ModelNotFoundError
from triage.locks import file_lock
from triage.models.base import Classifier, LoadedModel
from triage.models.io import load_classifier
from triage.settings import Settings

log = logging.getLogger(__name__)
CHAMPION = "champion"
CHALLENGER = "challenger"
ARTIFACT = "classifier"
PIP_REQUIREMENTS = [
    "numpy==2.2.6",
    "scikit-learn==1.9.1",
    "onnxruntime==1.31.1",
    "tokenizers==0.23.3",
    "transformers==5.23.0",
    "pandas==3.1.1",
]


class TriagePyfunc(PythonModel):
    """Any triage classifier as an MLflow pyfunc: text column in, probability columns out."""

    classifier: Classifier

    def load_context(self, context: PythonModelContext) -> None:
        """Restore the classifier from the logged directory; `model_config={"threads": n}` sets intra-op threads."""
        threads = int((context.model_config or {}).get("threads", 1))
        self.classifier = load_classifier(context.artifacts[ARTIFACT], threads=threads)

    # No type hints on the inputs: MLflow would then validate and coerce them against its own schema rules.
    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        """Calibrated probabilities; columns `cat:<name>` and `sev:<level>`."""
        texts = list(model_input["text"]) if isinstance(model_input, pd.DataFrame) else list(model_input)
        pred = self.classifier.predict([str(t) for t in texts])
        card = self.classifier.card
        cols = {f"cat:{c}": pred.categories[:, j] for j, c in enumerate(card.categories)}
        cols.update({f"sev:{s}": pred.severity[:, k] for k, s in enumerate(card.severity_levels)})
        return pd.DataFrame(cols)


def configure(settings: Settings) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    uri = settings.tracking_uri
    if uri.startswith("sqlite:"):
        settings.home.mkdir(parents=True, exist_ok=True)
    # MLflow copies the URI into MLFLOW_TRACKING_URI; undo that so the next Settings read the user's value.
    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    # Two first runs at once would both migrate the new SQLite schema and create the experiment: the second
    # breaks the store for good. One process at a time initialises it, behind a file lock beside the store.
    # No lock for a tracking server, which serialises itself.
    with file_lock(settings.home / ".mlflow-store.lock" if uri.startswith("sqlite:") else None):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        if client.get_experiment_by_name(settings.mlflow.experiment) is None:
            location = None
            if uri.startswith("sqlite:"):
                settings.artifact_root.mkdir(parents=True, exist_ok=True)
                location = settings.artifact_root.resolve().as_uri()
            client.create_experiment(settings.mlflow.experiment, artifact_location=location)
        mlflow.set_experiment(settings.mlflow.experiment)
    return client


@contextmanager
def run(settings: Settings, name: str, nested: bool = False, tags: Mapping[str, str] | None = None
        ) -> Iterator[str]:
    """An MLflow run; yields its id."""
    configure(settings)
    with mlflow.start_run(run_name=name, nested=nested, tags=dict(tags or {})) as active:
        yield active.info.run_id


def log_params(params: Mapping[str, Any]) -> None:
    """Log parameters (values stringified by MLflow)."""
    mlflow.log_params({k: v for k, v in params.items()})


def log_metrics(metrics: Mapping[str, float], prefix: str = "") -> None:
    """Log numeric metrics, names prefixed (MLflow allows letters, digits, _ - . / and space)."""
    mlflow.log_metrics({f"{prefix}{k}": float(v) for k, v in metrics.items()})


def log_figure(figure: Any, name: str) -> None:
    """Log a matplotlib figure as a PNG artifact."""
    mlflow.log_figure(figure, name)


def log_dict(data: Mapping[str, Any], name: str) -> None:
    """Log a JSON artifact."""
    mlflow.log_dict(dict(data), name)


def log_text(text: str, name: str) -> None:
    """Log a text artifact (Markdown tables, reports)."""
    mlflow.log_text(text, name)


def log_classifier(classifier: Classifier, sample_texts: list[str]) -> str:
    """Log a classifier as one pyfunc model in the active run; returns its model URI."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / ARTIFACT
        classifier.save(directory)
        wrapper = TriagePyfunc()
        wrapper.classifier = classifier
        example = pd.DataFrame({"text": sample_texts[:3]})
        signature = infer_signature(example, wrapper.predict(None, example))
        del wrapper.classifier  # the weights travel as an artifact, not inside the pickle
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapper,
            artifacts={ARTIFACT: str(directory)},
            signature=signature,
            pip_requirements=PIP_REQUIREMENTS,
            # Declared here so a loader may override it (MLflow keeps only keys logged with the model).
            model_config={"threads": 1},
        )
    return info.model_uri


def register(client: MlflowClient, model_uri: str, name: str, tags: Mapping[str, str] | None = None) -> str:
    """Register a logged model under `name`; returns the new version."""
    version = mlflow.register_model(model_uri, name, tags=dict(tags or {}))
    return str(version.version)


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points to, or None when the model or alias does not exist."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(client: MlflowClient, name: str, alias: str, version: str) -> None:
    """Point `alias` at `version`."""
    client.set_registered_model_alias(name, alias, version)


def load_model(settings: Settings, alias: str = CHAMPION) -> LoadedModel:
    """Load `models:/<name>@<alias>` as our classifier; ModelNotFoundError when nothing is registered."""
    client = configure(settings)
    name = settings.mlflow.model_name
    version = alias_version(client, name, alias)
    if version is None:
        raise ModelNotFoundError(
            f"no model registered as {name}@{alias} in {settings.tracking_uri}; run `triage train` first"
        )
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@{alias}", model_config={"threads": settings.serving.threads})
    wrapper = pyfunc.unwrap_python_model()
    mv = client.get_model_version(name, version)
    metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    return LoadedModel(wrapper.classifier, name, version, alias, mv.run_id, dict(metrics))


HISTORY_TAG = "champion_history"


def champion_history(client: MlflowClient, name: str) -> list[str]:
    """Earlier champions, oldest first (kept as a registered-model tag so rollback can walk back)."""
    import json

    tags = client.get_registered_model(name).tags or {}
    return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]


def move_champion(client: MlflowClient, name: str, version: str, record: Mapping[str, str]) -> str | None:
    """Point @champion at `version`, remember the previous one, and tag the version with `record`."""
    import json

    previous = alias_version(client, name, CHAMPION)
    if previous is not None and previous != version:
        history = [*champion_history(client, name), previous]
        client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-50:]))
    for key, value in record.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHAMPION, version)
    return previous


def roll_back(client: MlflowClient, name: str, record: Mapping[str, str]) -> tuple[str | None, str]:
    """Point @champion back at the previous champion; returns (from, to). ModelNotFoundError without history."""
    import json

    history = champion_history(client, name)
    if not history:
        raise ModelNotFoundError(f"{name} has no earlier champion to roll back to")
    target = history[-1]
    current = alias_version(client, name, CHAMPION)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[:-1]))
    for key, value in record.items():
        client.set_model_version_tag(name, target, key, value)
    client.set_registered_model_alias(name, CHAMPION, target)
    return current, target


def version_tags(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    """Tags of one model version."""
    return dict(client.get_model_version(name, version).tags or {})


def load_version(settings: Settings, version: str) -> LoadedModel:
    """Load a specific registered version (not through an alias)."""
    client = configure(settings)
    name = settings.mlflow.model_name
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as err:
        raise ModelNotFoundError(f"{name} has no version {version}") from err
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{version}", model_config={"threads": settings.serving.threads})
    metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    return LoadedModel(pyfunc.unwrap_python_model().classifier, name, str(version), "", mv.run_id, dict(metrics))


def comparison_pair(settings: Settings) -> tuple[LoadedModel, LoadedModel, str]:
    """(champion, challenger, note) to compare: @challenger when it differs from @champion, else (after a
    promotion both point at one version) the newest other registered version. ModelNotFoundError when there is
    no other version."""
    client = configure(settings)
    name = settings.mlflow.model_name
    champion = load_model(settings, CHAMPION)
    wanted = alias_version(client, name, CHALLENGER)
    note = f"@challenger v{wanted}"
    if wanted is None or wanted == champion.version:
        versions = sorted((int(v.version) for v in client.search_model_versions(f"name='{name}'")), reverse=True)
        others = [str(v) for v in versions if str(v) != champion.version]
        if not others:
            raise ModelNotFoundError(f"{name} has only version {champion.version}: nothing to compare it with")
        wanted = others[0]
        note = (f"@challenger is the champion (v{champion.version}): comparing with the newest other version, "
                f"v{wanted}")
    return champion, load_version(settings, wanted), note
