# Everyday commands. `make run` and `make test` work on a fresh machine with only python3.11.
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup run test test-unit test-integration lint typecheck check train train-transformer train-combined serve evaluate \
        bench-api bench-transformer labelstudio-up labelstudio-down mlflow-server notebook demo-review retrain promote rollback clean

setup:                      ## create/refresh the virtual environment
	@bash scripts/bootstrap.sh

run: setup                  ## train the default model if none is registered, then serve on 127.0.0.1:8000
	$(BIN)/triage serve --train-if-missing

test: setup                 ## every test: unit, API, and integration against real Label Studio and MLflow
	@bash scripts/test.sh

test-unit: setup            ## fast tests only
	$(BIN)/pytest -q -m "not integration and not slow"

test-integration: setup
	$(BIN)/pytest -q -m "integration"

lint: setup
	$(BIN)/ruff check triage training serving triage_cli tests benchmarks

typecheck: setup
	$(BIN)/mypy

check: lint typecheck

train: setup                ## train the baseline on ../shared/datasets and register it in MLflow
	$(BIN)/triage train --model baseline

train-transformer: setup    ## fine-tune MiniLM on all shared data (under 30 min on 2 cores)
	$(BIN)/triage train --model transformer --alias challenger

train-combined: setup      ## n-grams + the fine-tuned transformer, stacked (the most accurate model, ~20 min); @challenger
	$(BIN)/triage train --model combined --alias challenger

retrain: setup              ## challenger from base data + expert labels; compare with the champion
	$(BIN)/triage retrain

promote: setup              ## move @champion to @challenger when the promotion gate passes
	$(BIN)/triage promote

rollback: setup
	$(BIN)/triage rollback

evaluate: setup
	$(BIN)/triage evaluate

serve: setup
	$(BIN)/triage serve

bench-api: setup            ## 1,000 real tickets through the HTTP API in batches of 64
	$(BIN)/python benchmarks/bench_api.py

ALIAS ?= challenger
bench-transformer: setup    ## transformer speed (plain vs torch vs int8), parity, HTTP load; ALIAS=challenger
	$(BIN)/python benchmarks/bench_transformer.py --alias $(ALIAS)

labelstudio-up:             ## install (first time) and start Label Studio on 127.0.0.1:8089
	@bash scripts/labelstudio.sh up

demo-review: setup          ## the review loop end to end on real tickets (starts Label Studio if needed)
	$(BIN)/python scripts/demo_review_loop.py

labelstudio-down:
	@bash scripts/labelstudio.sh down

mlflow-server: setup       ## a team MLflow server on 127.0.0.1:5055 (SQLite + local artifacts, one worker)
	@bash scripts/mlflow_server.sh

notebook: setup            ## run notebooks/compare_models.ipynb; saved with its output in results/ (.ipynb and .html)
	$(BIN)/python scripts/run_notebook.py notebooks/compare_models.ipynb --out results

clean:                      ## remove environments and local state (models, MLflow store, Label Studio data)
	rm -rf $(VENV) .venv-labelstudio .triage results
