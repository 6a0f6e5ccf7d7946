# The classification service on loopback: `bentoml serve serving.service:DocClassifier` in the background with a pid
# file, a log and a wait for /readyz. Included by the Makefile; also usable alone:
#   make -f serving/bentoml.mk serve-up SERVE_PORT=3001 SERVE_WORKERS=2
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

SERVE_HOST := 127.0.0.1
SERVE_PORT ?= 3000
SERVE_WORKERS ?= 1
SERVE_DATA ?= .data/serving
SERVE_TIMEOUT ?= 90
BENTOML_BIN ?= .venv/bin/bentoml
SERVE_PID = $(SERVE_DATA)/server.pid
SERVE_LOG = $(SERVE_DATA)/server.log

.PHONY: serve-up serve-down

serve-up:  ## start the classification service on 127.0.0.1:$(SERVE_PORT), wait for /readyz
	@mkdir -p $(SERVE_DATA)
	@url="http://$(SERVE_HOST):$(SERVE_PORT)"; \
	if [ -f $(SERVE_PID) ] && kill -0 "$$(cat $(SERVE_PID))" 2>/dev/null; then \
	  if curl -fsS -m 5 "$$url/readyz" >/dev/null 2>&1; then echo "docclass service already running at $$url"; exit 0; fi; \
	  echo "error: the service (pid $$(cat $(SERVE_PID))) runs but $$url/readyz does not answer; make serve-down first" >&2; exit 1; \
	fi; \
	if (exec 3<>/dev/tcp/$(SERVE_HOST)/$(SERVE_PORT)) 2>/dev/null; then \
	  echo "error: port $(SERVE_PORT) on $(SERVE_HOST) is in use: expected it free for the service (set SERVE_PORT)" >&2; exit 1; \
	fi; \
	BENTOML_DO_NOT_TRACK=true DO_NOT_TRACK=true BENTOML_HOME="$$(realpath $(SERVE_DATA))/bentoml" \
	  BENTOML_CONFIG_OPTIONS="services.docclass.workers=$(SERVE_WORKERS)" \
	  nohup $(BENTOML_BIN) serve serving.service:DocClassifier --host $(SERVE_HOST) --port $(SERVE_PORT) \
	  >$(SERVE_LOG) 2>&1 & echo $$! > $(SERVE_PID); \
	for i in $$(seq $(SERVE_TIMEOUT)); do \
	  if curl -fsS -m 2 "$$url/readyz" >/dev/null 2>&1; then \
	    echo "docclass service at $$url (live page $$url/ui, API docs $$url/, pid $$(cat $(SERVE_PID)), log $(SERVE_LOG))"; exit 0; fi; \
	  if ! kill -0 "$$(cat $(SERVE_PID))" 2>/dev/null; then break; fi; \
	  sleep 1; \
	done; \
	echo "error: the service did not answer on $$url/readyz within $(SERVE_TIMEOUT) s; last lines of $(SERVE_LOG):" >&2; \
	tail -20 $(SERVE_LOG) >&2; \
	if kill -0 "$$(cat $(SERVE_PID))" 2>/dev/null; then kill -- "$$(cat $(SERVE_PID))"; fi; rm -f $(SERVE_PID); exit 1

serve-down:  ## stop the service started by serve-up
	@if [ -f $(SERVE_PID) ] && kill -0 "$$(cat $(SERVE_PID))" 2>/dev/null; then \
	  pid="$$(cat $(SERVE_PID))"; \
	  pkill -TERM -P "$$pid" 2>/dev/null || true; kill -TERM "$$pid"; \
	  for i in $$(seq 20); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.5; done; \
	  rm -f $(SERVE_PID); echo "docclass service stopped"; \
	else rm -f $(SERVE_PID); echo "docclass service is not running"; fi
