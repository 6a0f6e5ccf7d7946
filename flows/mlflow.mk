# MLflow tracking server + model registry on loopback: SQLite backend and local artifacts under $(MLFLOW_DATA),
# one worker, job execution off (~510 MB instead of ~2 GB, ../shared/STACK.md). Included by the Makefile; also
# usable alone:  make -f flows/mlflow.mk mlflow-up MLFLOW_PORT=5001 MLFLOW_DATA=/tmp/mlflow
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

MLFLOW_HOST := 127.0.0.1
MLFLOW_PORT ?= 5000
MLFLOW_DATA ?= .data/mlflow
MLFLOW_TIMEOUT ?= 60
MLFLOW_BIN ?= .venv/bin/mlflow
MLFLOW_PID = $(MLFLOW_DATA)/server.pid
MLFLOW_LOG = $(MLFLOW_DATA)/server.log

.PHONY: mlflow-up mlflow-down

mlflow-up:  ## start the MLflow server on 127.0.0.1:$(MLFLOW_PORT) (SQLite + local artifacts), wait for /health
	@mkdir -p $(MLFLOW_DATA)/artifacts
	@url="http://$(MLFLOW_HOST):$(MLFLOW_PORT)"; \
	if [ -f $(MLFLOW_PID) ] && kill -0 "$$(cat $(MLFLOW_PID))" 2>/dev/null; then \
	  if curl -fsS -m 5 "$$url/health" >/dev/null 2>&1; then echo "MLflow already running at $$url"; exit 0; fi; \
	  echo "error: MLflow (pid $$(cat $(MLFLOW_PID))) runs but $$url/health does not answer; make mlflow-down first" >&2; exit 1; \
	fi; \
	if (exec 3<>/dev/tcp/$(MLFLOW_HOST)/$(MLFLOW_PORT)) 2>/dev/null; then \
	  echo "error: port $(MLFLOW_PORT) on $(MLFLOW_HOST) is in use: expected it free for MLflow (set MLFLOW_PORT)" >&2; exit 1; \
	fi; \
	data="$$(realpath $(MLFLOW_DATA))"; \
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
	  nohup $(MLFLOW_BIN) server --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) --workers 1 \
	  --backend-store-uri "sqlite:///$$data/mlflow.db" --artifacts-destination "$$data/artifacts" \
	  >$(MLFLOW_LOG) 2>&1 & echo $$! > $(MLFLOW_PID); \
	for i in $$(seq $(MLFLOW_TIMEOUT)); do \
	  if curl -fsS -m 2 "$$url/health" >/dev/null 2>&1; then echo "MLflow at $$url (pid $$(cat $(MLFLOW_PID)), log $(MLFLOW_LOG))"; exit 0; fi; \
	  if ! kill -0 "$$(cat $(MLFLOW_PID))" 2>/dev/null; then break; fi; \
	  sleep 1; \
	done; \
	echo "error: MLflow did not answer on $$url/health within $(MLFLOW_TIMEOUT) s; last lines of $(MLFLOW_LOG):" >&2; \
	tail -20 $(MLFLOW_LOG) >&2; \
	if kill -0 "$$(cat $(MLFLOW_PID))" 2>/dev/null; then kill -- "$$(cat $(MLFLOW_PID))"; fi; rm -f $(MLFLOW_PID); exit 1

mlflow-down:  ## stop the MLflow server started by mlflow-up
	@if [ -f $(MLFLOW_PID) ] && kill -0 "$$(cat $(MLFLOW_PID))" 2>/dev/null; then \
	  pid="$$(cat $(MLFLOW_PID))"; \
	  pkill -TERM -P "$$pid" 2>/dev/null || true; kill -TERM "$$pid"; \
	  for i in $$(seq 20); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.5; done; \
	  rm -f $(MLFLOW_PID); echo "MLflow stopped"; \
	else rm -f $(MLFLOW_PID); echo "MLflow is not running"; fi
