# MLflow tracking server + model registry on loopback: SQLite backend and local artifacts under $(MLFLOW_DATA),
# one worker, job execution off (~510 MB instead of ~2 GB, ../shared/STACK.md). Included by the Makefile; also
# usable alone:  make -f flows/mlflow.mk mlflow-up MLFLOW_PORT=5001 MLFLOW_DATA=/tmp/mlflow
include $(dir $(lastword $(MAKEFILE_LIST)))../mk/server.mk

MLFLOW_HOST := 127.0.0.1
MLFLOW_PORT ?= 5000
MLFLOW_DATA ?= .data/mlflow
MLFLOW_TIMEOUT ?= 60
MLFLOW_BIN ?= .venv/bin/mlflow
MLFLOW_PID = $(MLFLOW_DATA)/server.pid
MLFLOW_LOG = $(MLFLOW_DATA)/server.log
MLFLOW_URL = http://$(MLFLOW_HOST):$(MLFLOW_PORT)

.PHONY: mlflow-up mlflow-down

# MLFLOW_STORE_ARGS empty: the stores come from MLFLOW_BACKEND_STORE_URI / MLFLOW_ARTIFACTS_DESTINATION, which the
# MLFLOW_LAUNCHER sets (the scale profile's `python -m flows.scale exec ... --`, mk/scale.mk).
MLFLOW_STORE_ARGS ?= --backend-store-uri "sqlite:///$(abspath $(MLFLOW_DATA))/mlflow.db" --artifacts-destination "$(abspath $(MLFLOW_DATA))/artifacts"
MLFLOW_LAUNCHER ?=
MLFLOW_COMMAND = $(MLFLOW_LAUNCHER) env MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true \
  $(MLFLOW_BIN) server --host $(MLFLOW_HOST) --port $(MLFLOW_PORT) --workers 1 $(MLFLOW_STORE_ARGS)

mlflow-up:  ## start the MLflow server on 127.0.0.1:$(MLFLOW_PORT) (SQLite + local artifacts), wait for /health
	@mkdir -p $(MLFLOW_DATA)/artifacts
	$(call start-server,MLflow,$(MLFLOW_PID),$(MLFLOW_LOG),$(MLFLOW_URL)/health,$(MLFLOW_TIMEOUT),$(MLFLOW_COMMAND),MLFLOW_PORT)
	@echo "MLflow at $(MLFLOW_URL) (log $(MLFLOW_LOG))"

mlflow-down:  ## stop the MLflow server started by mlflow-up
	$(call stop-server,MLflow,$(MLFLOW_PID))
