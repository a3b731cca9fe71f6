# Serving image: the scoring API with the model registered as @champion in the configured MLflow store.
#   docker build -t triage .
#   docker run -p 8000:8000 -v $PWD/.triage:/data triage                       # embedded SQLite store in /data
#   docker run -p 8000:8000 -e MLFLOW_TRACKING_URI=http://mlflow:5000 triage    # a team tracking server
# torch must be a CPU build: pass the CPU wheel index of your mirror with --build-arg TORCH_INDEX_URL=...,
# otherwise pip resolves torch==2.13.0 from PyPI, which is the multi-GB CUDA build.
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    TRIAGE_HOME=/data \
    TRIAGE_ENV=prod \
    TRIAGE_SERVING__HOST=0.0.0.0 \
    TRIAGE_SERVING__PORT=8000

WORKDIR /app
RUN useradd --create-home --uid 10001 triage && mkdir -p /data && chown triage /data

RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch==2.13.0; \
    else pip install torch==2.13.0; fi

COPY pyproject.toml README.md ./
COPY triage ./triage
COPY training ./training
COPY serving ./serving
COPY triage_cli ./triage_cli
RUN pip install .

USER triage
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"
CMD ["triage", "serve"]
