"""The human-in-the-loop review loop end to end, on real tickets from the shared datasets.

    .venv/bin/python scripts/demo_review_loop.py [--tickets 120] [--annotate 10]

1. starts Label Studio with scripts/labelstudio.sh (installs it on first use) unless it is already up;
2. serves the API (the registered @champion, or a baseline trained here in seconds when none is registered);
3. scores real tickets through POST /v1/score: the uncertain ones are queued and pushed with predictions;
4. annotates some tasks through Label Studio's API, in the order Label Studio serves them (least certain
   first), with the dataset's own labels standing in for the expert; the webhooks record them;
5. runs the sync (safety-net pull) and writes the training-data export, read back with the project's reader.

Label Studio keeps running afterwards (stop it with scripts/labelstudio.sh down).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from triage.adapters.labelstudio import LabelStudioBackend  # noqa: E402
from triage.data.imports import read_labelled_file  # noqa: E402
from triage.data.schema import Example  # noqa: E402
from triage.models.base import LoadedModel  # noqa: E402
from triage.review.annotations import result_for  # noqa: E402
from triage.review.service import build_review_service  # noqa: E402
from triage.settings import LabelStudioSettings, ServingSettings, Settings, get_settings  # noqa: E402
from triage.taxonomy import Policy  # noqa: E402
from triage_cli.review import write_examples  # noqa: E402

console = Console()
SOURCES = ["sms_spam", "smishing", "davidson", "openai_moderation", "ethos_multi"]


class StaticSource:
    """Serves one loaded model (the ModelSource protocol of serving.model_source)."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded

    def current_version(self) -> str | None:
        return self.loaded.version

    def load(self) -> LoadedModel:
        return self.loaded


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_labelstudio(settings: Settings) -> None:
    ls = settings.labelstudio
    try:
        if httpx.get(f"{ls.url}/health", timeout=2).json().get("status") == "UP":
            console.print(f"Label Studio already up at {ls.url}")
            return
    except (httpx.HTTPError, ValueError):
        pass
    # The script binds the address of the one setting the app reads too (TRIAGE_LABELSTUDIO__URL).
    env = {**{k: v for k, v in os.environ.items() if k != "TRIAGE_LS_PORT"}, "TRIAGE_LABELSTUDIO__URL": ls.url,
           "TRIAGE_LS_TOKEN": ls.api_token.get_secret_value()}
    if ls.data_dir:
        env["TRIAGE_LS_DATA"] = str(ls.data_dir)
    t0 = time.perf_counter()
    subprocess.run(["bash", str(ROOT / "scripts" / "labelstudio.sh"), "up"], env=env, check=True)
    console.print(f"Label Studio started in {time.perf_counter() - t0:.1f} s at {ls.url}")


def model_and_tickets(settings: Settings, policy: Policy, n: int) -> tuple[LoadedModel, list[Example]]:
    """The @champion when registered (else a quick baseline), and `n` real tickets it was not trained on."""
    from triage.data.sources import load_all

    if settings.datasets_dir is None:
        raise SystemExit("the shared datasets (../shared/datasets) are needed for the demo")
    examples = [e for e in load_all(settings.datasets_dir, SOURCES, policy) if e.text.strip()]
    random.Random(11).shuffle(examples)
    try:
        from triage.adapters import mlflow_registry as registry

        loaded = registry.load_model(settings)
        console.print(f"model: registered {loaded.name} v{loaded.version} (@{loaded.alias})")
        return loaded, examples[:n]
    except Exception as err:  # nothing registered yet: train a small real baseline here
        console.print(f"no registered champion ({type(err).__name__}); training a quick baseline")
    import dataclasses

    from training.baseline import BaselineParams, fit

    wanted = {"max_word_features": 20_000, "max_char_features": 30_000, "n_jobs": 1}
    known = {f.name for f in dataclasses.fields(BaselineParams)}
    t0 = time.perf_counter()
    clf = fit(examples[:3000], examples[3000:3500], policy,
              BaselineParams(**{k: v for k, v in wanted.items() if k in known}))
    console.print(f"model: baseline trained on 3,000 tickets in {time.perf_counter() - t0:.1f} s")
    loaded = LoadedModel(classifier=clf, name="triage-demo", version="demo-1", alias="none", run_id=None, metrics={})
    return loaded, examples[3500:3500 + n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=120, help="real tickets to score")
    parser.add_argument("--annotate", type=int, default=10, help="tasks to annotate through the API")
    parser.add_argument("--project", default="Triage review (demo)")
    args = parser.parse_args()

    from serving.app import create_app
    from serving.routes import ml_backend, review

    base = get_settings()
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    home = base.home / "demo" / re.sub(r"[^a-z0-9]+", "-", args.project.lower()).strip("-")  # one outbox per project
    ls_settings = LabelStudioSettings(**{
        **base.labelstudio.model_dump(), "enabled": True, "project_title": args.project,
        "outbox_path": home / "review.db", "webhook_url": f"{api}/v1/review/webhook", "ml_backend_url": f"{api}/ml",
        "sync_interval_s": 0.5, "backoff_max_s": 5.0,
    })
    settings = base.model_copy(update={"labelstudio": ls_settings,
                                       "serving": ServingSettings(host="127.0.0.1", port=port)})
    policy = settings.load_policy()
    ensure_labelstudio(settings)
    loaded, tickets = model_and_tickets(settings, policy, args.tickets)
    truth = {f"demo-{i}": ex for i, ex in enumerate(tickets)}

    app = create_app(settings, source=StaticSource(loaded))
    paths = {getattr(r, "path", "") for r in app.routes}
    if "/v1/review/webhook" not in paths:
        app.include_router(review.router)
    if "/ml/predict" not in paths:
        app.include_router(ml_backend.router)
    if app.state.review is None:
        app.state.review = build_review_service(settings, policy)
    svc = app.state.review
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    svc.start()
    try:
        # 3. score through the API; the review ones go to the outbox, the sync pushes them
        review_ids: set[str] = set()
        with httpx.Client(timeout=60) as http:
            items = [{"id": tid, "text": ex.text, "metadata": {"source": ex.source}} for tid, ex in truth.items()]
            for start in range(0, len(items), 50):
                r = http.post(f"{api}/v1/score", json={"tickets": items[start:start + 50]})
                r.raise_for_status()
                review_ids |= {x["id"] for x in r.json()["results"] if x["route"] == "review"}
        console.print(f"scored {len(items)} real tickets: {len(review_ids)} routed to review")
        deadline = time.monotonic() + 120
        while svc.status()["waiting"] and time.monotonic() < deadline:
            time.sleep(0.2)
        st = svc.status()
        console.print(f"pushed to Label Studio project {st['project_id']}: {st['sent']} tasks sent, "
                      f"{st['waiting']} waiting")

        # 4. annotate as a reviewer would, in the order Label Studio serves the tasks
        ls = LabelStudioBackend(settings.labelstudio.url, settings.labelstudio.api_token.get_secret_value())
        done = 0
        for _ in range(args.annotate):
            task = ls.next_task(st["project_id"])
            if not task.get("id"):
                break
            ex = truth.get(str(task["data"].get("ticket_id")))
            if ex is None:
                break  # a task from an earlier run: leave it to people
            cats = [c for c, y in ex.labels.items() if y] or ["none"]
            # A consistent answer (the review service refuses others): none goes with severity none; a dataset
            # without a severity for a violation gets medium.
            severity = "none" if cats == ["none"] else (ex.severity if ex.severity not in (None, "none") else "medium")
            confidence = float(task["data"].get("confidence") or 0.0)
            ls.create_annotation(int(task["id"]), result_for(cats, severity,
                                                             f"demo: label from the {ex.source} dataset"))
            console.print(f"  annotated task {task['id']} (ticket {task['data']['ticket_id']}, model confidence "
                          f"{confidence:.2f}): {', '.join(cats)} / {severity}")
            done += 1
        time.sleep(0.5)
        by_webhook = sum(a.via == "webhook" for a in svc.outbox.annotations())
        console.print(f"{done} annotations made; {by_webhook} recorded by webhook")

        # 5. the sync command's pull (safety net), then the training-data export
        pulled = svc.pull()
        console.print(f"sync pull: seen {pulled.seen}, new {pulled.created}, updated {pulled.updated}, "
                      f"deleted {pulled.deleted}")
        out = home / "review_export.jsonl"
        write_examples(svc.examples(), out)  # the writer of `triage review export`
        back = read_labelled_file(out, policy)
        table = Table(title=f"training-data export: {out} ({len(back)} examples, read back by read_labelled_file)")
        for col in ("ticket", "reviewer categories", "severity", "annotators", "model", "text"):
            table.add_column(col)
        for ex in back[:12]:
            table.add_row(ex.meta.get("ticket_id", ""), ", ".join(c for c, y in ex.labels.items() if y) or "none",
                          str(ex.severity), ex.meta.get("annotators", ""), ex.meta.get("model_version", ""),
                          ex.text[:60].replace("\n", " "))
        console.print(table)
        console.print(svc.status())
    finally:
        svc.stop()
        server.should_exit = True
        thread.join(timeout=15)


if __name__ == "__main__":
    main()
