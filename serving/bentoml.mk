# The classification service on loopback: `bentoml serve serving.service:DocClassifier` in the background with a pid
# file, a log and a wait for /readyz. Included by the Makefile; also usable alone:
#   make -f serving/bentoml.mk serve-up SERVE_PORT=3001 SERVE_WORKERS=2
include $(dir $(lastword $(MAKEFILE_LIST)))../mk/server.mk

SERVE_HOST := 127.0.0.1
SERVE_PORT ?= 3000
SERVE_WORKERS ?= 1
SERVE_DATA ?= .data/serving
SERVE_TIMEOUT ?= 90
# Idle keep-alive connections are kept this long (uvicorn's default, 5 s, equals httpx's pool expiry: a request sent
# as the server closed its connection was reset, seen by make bench-soak). Longer than the common clients' pools.
SERVE_KEEP_ALIVE ?= 75
BENTOML_BIN ?= .venv/bin/bentoml
SERVE_PID = $(SERVE_DATA)/server.pid
SERVE_LOG = $(SERVE_DATA)/server.log
SERVE_URL = http://$(SERVE_HOST):$(SERVE_PORT)

.PHONY: serve-up serve-down

# SERVE_LAUNCHER: a command the service's is prefixed with (the scale profile's, mk/scale.mk, adds its settings).
SERVE_LAUNCHER ?=
SERVE_COMMAND = $(SERVE_LAUNCHER) env BENTOML_DO_NOT_TRACK=true DO_NOT_TRACK=true BENTOML_HOME="$(abspath $(SERVE_DATA))/bentoml" \
  BENTOML_CONFIG_OPTIONS="services.docclass.workers=$(SERVE_WORKERS)" \
  $(BENTOML_BIN) serve serving.service:DocClassifier --host $(SERVE_HOST) --port $(SERVE_PORT) \
  --timeout-keep-alive $(SERVE_KEEP_ALIVE)

serve-up:  ## start the classification service on 127.0.0.1:$(SERVE_PORT), wait for /readyz
	$(call start-server,docclass service,$(SERVE_PID),$(SERVE_LOG),$(SERVE_URL)/readyz,$(SERVE_TIMEOUT),$(SERVE_COMMAND),SERVE_PORT)
	@echo "docclass service at $(SERVE_URL) (live page $(SERVE_URL)/ui, API docs $(SERVE_URL)/, log $(SERVE_LOG))"

serve-down:  ## stop the service started by serve-up
	$(call stop-server,docclass service,$(SERVE_PID))
