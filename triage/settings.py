"""The one settings object, read from the environment (prefix TRIAGE_, nested sections with __)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from triage.taxonomy import Policy, load_policy

_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev-token", "dev-secret"}


def api_key_id(key: str) -> str:
    """A stable, non-reversible id of an API key (the key itself is never stored or logged)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _find_datasets() -> Path | None:
    """`../shared/datasets` beside the checkout, when it is there."""
    for base in (Path.cwd(), _project_root()):
        for parent in (base, *base.parents):
            candidate = parent.parent / "shared" / "datasets"
            if (candidate / "README.md").is_file():
                return candidate
    return None


class ServingSettings(BaseModel):
    """HTTP API limits and runtime knobs."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    max_tickets: int = Field(default=256, ge=1, le=4096)
    max_text_chars: int = Field(default=20_000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    reload_interval_s: float = Field(default=0.0, ge=0.0, description="poll for a new @champion; 0 = off")
    microbatch_max: int = Field(default=32, ge=1, le=1024)
    microbatch_wait_ms: float = Field(default=0.25, ge=0.0, le=1000.0,
                                      description="how long a free model worker waits for more requests to join "
                                      "the ones already queued")
    threads: int = Field(default=1, ge=1, le=64, description="intra-op threads per model call")
    model_workers: int = Field(default=2, ge=1, le=64, description="model calls that run at once (one per core)")
    model_dir: Path | None = Field(default=None, description="serve a saved classifier directory, not the registry")
    switch_interval_ms: float = Field(default=0.5, ge=0.0, le=100.0, description="Python's GIL switch interval "
                                      "while serving (sys.setswitchinterval); 0 = leave Python's default (5 ms)")

    @field_validator("model_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value  # TRIAGE_SERVING__MODEL_DIR="" undoes an image's default


class MlflowSettings(BaseModel):
    """Where runs and the model registry live."""

    tracking_uri: str | None = None
    experiment: str = "triage"
    model_name: str = "triage"


class LabelStudioSettings(BaseModel):
    """How to reach the reviewers' Label Studio and keep the review queue."""

    url: str = "http://127.0.0.1:8089"
    api_token: SecretStr = SecretStr("dev-token")
    project_title: str = "Triage review"
    webhook_secret: SecretStr = SecretStr("dev-secret")
    strategy: str = "least_confidence"
    # On by default: with Label Studio down, review items simply wait in the outbox until it is back.
    enabled: bool = True
    outbox_path: Path | None = Field(default=None, description="SQLite review queue; None = <home>/review.db")
    sync_interval_s: float = Field(default=5.0, gt=0.0, le=3600.0, description="idle wait between deliveries")
    batch_size: int = Field(default=100, ge=1, le=5000, description="tasks per import request")
    request_timeout_s: float = Field(default=10.0, gt=0.0, le=600.0, description="per Label Studio request")
    backoff_initial_s: float = Field(default=1.0, gt=0.0, le=600.0)
    backoff_max_s: float = Field(default=30.0, gt=0.0, le=3600.0)
    pull_interval_s: float = Field(default=300.0, ge=0.0, description="background safety-net pull; 0 = off")
    # Where Label Studio reaches this API (webhook receiver, ML backend); None = do not register them.
    webhook_url: str | None = None
    ml_backend_url: str | None = None
    webhook_header: str = "X-Triage-Webhook-Secret"
    data_dir: Path | None = Field(default=None, description="Label Studio data dir for scripts/labelstudio.sh")
    api_public_url: str | None = Field(default=None, description="where Label Studio reaches this API (e.g. behind "
                                       "a proxy); None = the address the server bound. The webhook and ML backend "
                                       "URLs derive from it unless set themselves")

    @model_validator(mode="after")
    def _backoff_order(self) -> LabelStudioSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be >= backoff_initial_s ({self.backoff_initial_s})"
            )
        return self


class OpsSettings(BaseModel):
    """Operating the API: failure spool, logs, CORS, docs, retention of ticket text."""

    spool_capacity: int = Field(default=10_000, ge=0, description="review tickets held in memory while the "
                                "outbox cannot take them")
    spool_retry_s: float = Field(default=5.0, gt=0.0, le=3600.0, description="retry interval of the spool")
    json_logs: bool = Field(default=False, description="one JSON object per log line")
    cors_origins: list[str] = Field(default_factory=list, description="allowed CORS origins; empty = no CORS")
    docs_enabled: bool | None = Field(default=None, description="/docs and /openapi.json; None = off in prod only")
    retention_days: float = Field(default=30.0, ge=0.0, description="done outbox rows (their ticket text "
                                  "included) are deleted this long after delivery, waiting ones never; labelled rows "
                                  "lose their text at once; 0 = nothing deleted by age")
    metrics_enabled: bool = True
    startup_wait_s: float = Field(default=20.0, ge=0.0, le=600.0, description="start-up waits this long for the "
                                  "first model load, then binds the port and answers 503 until it lands")
    purge_interval_s: float = Field(default=600.0, gt=0.0, description="how often the server purges ticket text")
    model_retry_s: float = Field(default=5.0, gt=0.0, le=3600.0, description="retry interval until a first model "
                                 "is served")


class DecisionsSettings(BaseModel):
    """The decision log: where every scored ticket is recorded, and what of it is kept."""

    enabled: bool = True
    url: str | None = Field(default=None, description="SQLAlchemy URL; None = SQLite file <home>/decisions.db")
    store_text: bool = Field(default=False, description="keep ticket texts (deleted after retention_days)")
    retention_days: float = Field(default=30.0, gt=0.0, description="how long stored texts are kept")
    purge_interval_s: float = Field(default=3600.0, ge=0.0, description="scheduled text purge; 0 = off")
    batch_size: int = Field(default=500, ge=1, le=100_000, description="decisions per database write")
    flush_interval_s: float = Field(default=0.5, gt=0.0, le=60.0, description="longest wait before a write")
    queue_max: int = Field(default=200_000, ge=1, description="decisions held in memory before dropping")
    audit_rate: float = Field(default=0.02, ge=0.0, le=1.0,
                              description="share of auto-routed decisions marked as the random audit sample")
    writer: Literal["process", "thread"] = Field(
        default="process", description="where rows are built and written: a child process (keeps the API's GIL "
        "free for requests) or a thread of the API process")
    writer_nice: int = Field(default=10, ge=0, le=19,
                             description="how much the writer process lowers its CPU priority (0 = not at all)")


class OverloadSettings(BaseModel):
    """What the API does when more arrives than the model can score (serving/overload.py)."""

    # Default: one round of full micro-batches in the model (2 workers x 32) and one waiting for it.
    max_pending_tickets: int = Field(default=128, ge=1, le=100_000,
                                     description="tickets waiting for or in model calls; beyond it 429")
    retry_after_s: int = Field(default=1, ge=1, le=3600, description="Retry-After sent with a 429")
    request_timeout_ms: float = Field(default=5000.0, gt=0.0, le=600_000.0,
                                      description="default deadline of a score request (X-Request-Timeout-Ms)")
    queue_budget_ms: float = Field(default=50.0, ge=0.0, le=600_000.0,
                                   description="refuse (429) a request expected to wait longer than this behind the "
                                   "tickets already admitted (measured cost per queued ticket); 0 = the ticket "
                                   "limit alone")
    budget_floor_tickets: int = Field(default=16, ge=1, le=100_000,
                                      description="below this many pending tickets the queue budget never refuses "
                                      "(a few concurrent clients, or a host stall, are not an overload)")


class Settings(BaseSettings):
    """Everything configurable, from TRIAGE_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="TRIAGE_", env_nested_delimiter="__", extra="ignore")

    env: Literal["dev", "test", "prod"] = "dev"
    home: Path = Field(default_factory=lambda: _project_root() / ".triage")
    policy: Path | None = None
    datasets_dir: Path | None = Field(default_factory=_find_datasets)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    serving: ServingSettings = ServingSettings()
    mlflow: MlflowSettings = MlflowSettings()
    labelstudio: LabelStudioSettings = LabelStudioSettings()
    ops: OpsSettings = OpsSettings()
    decisions: DecisionsSettings = DecisionsSettings()
    overload: OverloadSettings = OverloadSettings()

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().startswith("{"):  # {"name": "key", ...}
            mapping = json.loads(value)
            if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
                raise ValueError('api_keys as JSON must be an object of name -> key, e.g. {"ops": "k1"}')
            return [f"{name}:{key}" for name, key in mapping.items()]
        if isinstance(value, dict):
            return [f"{name}:{key}" for name, key in value.items()]
        if isinstance(value, str):  # "name:key,name2:key2" or plain "key1,key2"
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_prod(self) -> Settings:
        if self.env == "prod" and not self.api_keys:
            raise ValueError("TRIAGE_API_KEYS is empty: set at least one key when TRIAGE_ENV=prod "
                             '(e.g. TRIAGE_API_KEYS="ops:<random key>"); prod never serves without keys')
        if self.env == "prod" and self.labelstudio.enabled:
            for field_name, secret in (
                ("labelstudio.api_token", self.labelstudio.api_token),
                ("labelstudio.webhook_secret", self.labelstudio.webhook_secret),
            ):
                if secret.get_secret_value().lower() in _PLACEHOLDERS:
                    raise ValueError(f"{field_name} is a placeholder; set a real secret when TRIAGE_ENV=prod "
                                     "(or TRIAGE_LABELSTUDIO__ENABLED=false)")
        return self

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: TRIAGE_MLFLOW__TRACKING_URI, else MLFLOW_TRACKING_URI, else SQLite in home."""
        uri = self.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        return uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def artifact_root(self) -> Path:
        """Where the embedded store keeps artifacts."""
        return self.home / "mlartifacts"

    @property
    def decisions_url(self) -> str:
        """The decision log's database: TRIAGE_DECISIONS__URL, else SQLite in home."""
        return self.decisions.url or f"sqlite:///{(self.home / 'decisions.db').resolve()}"

    def named_api_keys(self) -> list[tuple[str, SecretStr]]:
        """(name, key) per configured key: `name:key` entries keep their name, a plain key is named by
        `api_key_id` so logs and the decision log can tell keys apart without holding them."""
        out = []
        for entry in self.api_keys:
            value = entry.get_secret_value()
            name, sep, key = value.partition(":")
            if sep and name.strip() and key.strip():
                out.append((name.strip(), SecretStr(key.strip())))
            else:
                out.append((api_key_id(value), entry))
        return out

    def load_policy(self) -> Policy:
        """The configured policy (TRIAGE_POLICY) or the shipped default."""
        return load_policy(self.policy)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings built once per process, on first use (never at import)."""
    return Settings()
