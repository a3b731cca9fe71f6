# Serving image: the scoring API, as a non-root user, with the model mounted read-only (or baked in).
#   triage export-model model/                    # the @champion as a plain directory (portable, no MLflow paths)
#   docker build -t triage .
#   docker run -p 8000:8000 -v $PWD/model:/models/triage:ro -v triage-data:/data \
#     -e TRIAGE_API_KEYS="ops:<key>" -e TRIAGE_LABELSTUDIO__API_TOKEN=<token> \
#     -e TRIAGE_LABELSTUDIO__WEBHOOK_SECRET=<secret> triage
# TRIAGE_ENV=prod refuses to start without API keys, and with placeholder Label Studio secrets while review is on
# (TRIAGE_LABELSTUDIO__ENABLED=false turns review off). To serve the registry's @champion instead, unset
# TRIAGE_SERVING__MODEL_DIR and set TRIAGE_MLFLOW__TRACKING_URI (docker-compose.yml does).
# To bake the model in: a two-line Dockerfile `FROM triage` + `COPY --chown=root:root model/ /models/triage/`.
# torch must be a CPU build: pass the CPU wheel index of your mirror with --build-arg TORCH_INDEX_URL=...,
# otherwise pip resolves torch==2.13.0 from PyPI, which is the multi-GB CUDA build.
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""
# No secret here: hadolint reads "TOKEN" in TOKENIZERS_PARALLELISM as one. Secrets come at run time (-e).
# hadolint ignore=DL3064
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    TRIAGE_HOME=/data \
    TRIAGE_ENV=prod \
    TRIAGE_SERVING__HOST=0.0.0.0 \
    TRIAGE_SERVING__PORT=8000 \
    TRIAGE_SERVING__MODEL_DIR=/models/triage \
    TRIAGE_OPS__JSON_LOGS=true

WORKDIR /app
RUN useradd --create-home --uid 10001 triage && mkdir -p /data /models/triage && chown 10001:10001 /data

RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0; \
    else pip install torch==2.13.0; fi

COPY pyproject.toml README.md ./
COPY triage ./triage
COPY training ./training
COPY serving ./serving
COPY triage_cli ./triage_cli
RUN pip install .

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"]
CMD ["triage", "serve"]
