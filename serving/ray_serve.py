"""The same FastAPI app as `triage serve`, deployed on Ray Serve with N replicas (`triage serve --engine ray`).

Each replica builds the app from the environment (`create_app()`), so it runs the app's lifespan: it loads the
@champion, polls for a new one (TRIAGE_SERVING__RELOAD_INTERVAL_S) and keeps its own micro-batcher and overload
gate. Ray Serve's proxy spreads requests over the replicas. The review outbox is a SQLite file: on one machine the
replicas share it (see serving/workers.py for why only one of them delivers); on a cluster each node would have its
own file, so there the outbox and the decision state must live in a database every replica reaches (see
deploy/README.md).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from fastapi import FastAPI

log = logging.getLogger(__name__)
APP_NAME = "triage"


def build_app() -> FastAPI:
    """The ASGI app of one replica, built on the replica (never pickled from the driver)."""
    from serving.app import create_worker_app

    return create_worker_app()  # the server's logging (request ids) in every replica, as with --workers


def triage_env() -> dict[str, str]:
    """The settings of this process (TRIAGE_* and the Python path) for the replicas' runtime environment."""
    keep = ("TRIAGE_", "MLFLOW_", "HF_", "PYTHONPATH", "OMP_NUM_THREADS", "TOKENIZERS_PARALLELISM")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def deployment(replicas: int, cpus_per_replica: float = 1.0) -> Any:
    """A Ray Serve deployment of the app with `replicas` replicas."""
    from ray import serve

    ingress = serve.ingress(build_app)()
    return serve.deployment(ingress, name=APP_NAME, num_replicas=replicas,
                            ray_actor_options={"num_cpus": cpus_per_replica,
                                               "runtime_env": {"env_vars": triage_env()}})


def run(host: str, port: int, replicas: int, address: str | None = None) -> None:
    """Start (or join) Ray, deploy the app on `host:port` and block until interrupted."""
    import ray
    from ray import serve

    init: dict[str, Any] = {"include_dashboard": False, "runtime_env": {"env_vars": triage_env()}}
    if address:
        init["address"] = address
    else:
        init["num_cpus"] = max(replicas, os.cpu_count() or 1)
    ray.init(**init)
    serve.start(http_options={"host": host, "port": port})
    serve.run(deployment(replicas).bind(), name=APP_NAME, route_prefix="/", blocking=True)


def app_builder(args: dict[str, str]) -> Any:
    """Application builder for a Ray Serve config file (`import_path: serving.ray_serve:app_builder`, as in
    deploy/rayservice.yaml); `args.replicas` sets the replica count (default 2)."""
    return deployment(int(args.get("replicas", 2))).bind()
