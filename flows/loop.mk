# The retraining loop's servers on loopback: Prefect server (UI + API), the SMTP mail catcher, the flow server
# (`docclass flows serve`) and the webhook trigger (`docclass flows trigger-webhook`). Each runs with nohup, a pid
# file and a log; `-down` stops exactly the process group it started. Included by the Makefile; also usable alone:
#   make -f flows/loop.mk prefect-up PREFECT_PORT=4201 LOOP_DATA=/tmp/loop
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

LOOP_HOST := 127.0.0.1
LOOP_DATA ?= .data
LOOP_BIN ?= .venv/bin
PREFECT_PORT ?= 4200
PREFECT_TIMEOUT ?= 60
MAIL_PORT ?= 1025
MAIL_DIR ?= $(LOOP_DATA)/mail
FLOWS_TIMEOUT ?= 60

PREFECT_DIR = $(LOOP_DATA)/prefect
PREFECT_URL = http://$(LOOP_HOST):$(PREFECT_PORT)
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: prefect-up prefect-down mail-up mail-down flows-up flows-down trigger-up trigger-down

# $(call start,<name>,<pid file>,<log>,<command>): start in its own session unless the pid file names a live process.
define start
	@mkdir -p $(dir $(2)); \
	if [ -f $(2) ] && kill -0 "$$(cat $(2))" 2>/dev/null; then echo "$(1) already running (pid $$(cat $(2)))"; exit 0; fi; \
	setsid nohup $(4) >>$(3) 2>&1 </dev/null & echo $$! > $(2)
endef

# $(call stop,<name>,<pid file>): SIGTERM the process group, wait, then SIGKILL.
define stop
	@if [ ! -f $(2) ]; then echo "$(1) is not running (no $(2))"; exit 0; fi; \
	pid="$$(cat $(2))"; \
	if kill -0 "$$pid" 2>/dev/null; then \
	  kill -TERM -- -"$$pid" 2>/dev/null || kill -TERM "$$pid"; \
	  for _ in $$(seq 1 30); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.5; done; \
	  if kill -0 "$$pid" 2>/dev/null; then kill -KILL -- -"$$pid" 2>/dev/null || kill -KILL "$$pid"; fi; \
	  echo "$(1) stopped (pid $$pid)"; \
	else echo "$(1) was not running (stale $(2))"; fi; \
	rm -f $(2)
endef

prefect-up:  ## start the Prefect server (UI + API) on 127.0.0.1:$(PREFECT_PORT), wait for /api/health
	@if [ ! -f $(PREFECT_DIR)/server.pid ] && (exec 3<>/dev/tcp/$(LOOP_HOST)/$(PREFECT_PORT)) 2>/dev/null; then \
	  echo "error: port $(PREFECT_PORT) on $(LOOP_HOST) is in use: expected it free for Prefect (set PREFECT_PORT)" >&2; exit 1; fi
	$(call start,Prefect server,$(PREFECT_DIR)/server.pid,$(PREFECT_DIR)/server.log,env PREFECT_HOME=$$(realpath -m $(PREFECT_DIR)) $(LOOP_BIN)/prefect server start --host $(LOOP_HOST) --port $(PREFECT_PORT))
	@for _ in $$(seq 1 $(PREFECT_TIMEOUT)); do \
	  if curl -fsS -m 2 "$(PREFECT_URL)/api/health" >/dev/null 2>&1; then echo "Prefect UI at $(PREFECT_URL)"; exit 0; fi; \
	  kill -0 "$$(cat $(PREFECT_DIR)/server.pid)" 2>/dev/null || break; sleep 1; \
	done; \
	echo "error: Prefect did not answer $(PREFECT_URL)/api/health within $(PREFECT_TIMEOUT) s; last lines of $(PREFECT_DIR)/server.log:" >&2; \
	tail -n 20 $(PREFECT_DIR)/server.log >&2; kill -TERM -- -"$$(cat $(PREFECT_DIR)/server.pid)" 2>/dev/null || true; \
	rm -f $(PREFECT_DIR)/server.pid; exit 1

prefect-down:  ## stop the Prefect server started by prefect-up
	$(call stop,Prefect server,$(PREFECT_DIR)/server.pid)

mail-up:  ## start the SMTP mail catcher on 127.0.0.1:$(MAIL_PORT); mails land in $(MAIL_DIR)/*.eml
	$(call start,mail catcher,$(MAIL_DIR)/catcher.pid,$(MAIL_DIR)/catcher.log,$(LOOP_BIN)/python -m flows.mailcatcher --host $(LOOP_HOST) --port $(MAIL_PORT) --out $(MAIL_DIR))
	@for _ in $$(seq 1 20); do \
	  if (exec 3<>/dev/tcp/$(LOOP_HOST)/$(MAIL_PORT)) 2>/dev/null; then echo "mail catcher on $(LOOP_HOST):$(MAIL_PORT), mails in $(MAIL_DIR)"; exit 0; fi; \
	  kill -0 "$$(cat $(MAIL_DIR)/catcher.pid)" 2>/dev/null || break; sleep 0.5; \
	done; \
	echo "error: mail catcher did not listen on $(LOOP_HOST):$(MAIL_PORT); see $(MAIL_DIR)/catcher.log" >&2; \
	tail -n 20 $(MAIL_DIR)/catcher.log >&2; rm -f $(MAIL_DIR)/catcher.pid; exit 1

mail-down:  ## stop the mail catcher
	$(call stop,mail catcher,$(MAIL_DIR)/catcher.pid)

flows-up:  ## serve the retrain flow as a Prefect deployment (interval: params loop.interval_seconds), runs in the UI
	$(call start,flow server,$(LOOP_DATA)/loop/flows.pid,$(LOOP_DATA)/loop/flows.log,env PREFECT_API_URL=$(PREFECT_URL)/api $(LOOP_BIN)/docclass flows serve)
	@for _ in $$(seq 1 $(FLOWS_TIMEOUT)); do \
	  if curl -fsS -m 2 "$(PREFECT_URL)/api/deployments/name/retrain/docclass-retrain" >/dev/null 2>&1; then \
	    echo "flow server running: deployment retrain/docclass-retrain (log $(LOOP_DATA)/loop/flows.log)"; exit 0; fi; \
	  kill -0 "$$(cat $(LOOP_DATA)/loop/flows.pid)" 2>/dev/null || break; sleep 1; \
	done; \
	echo "error: the flow server did not start; last lines of $(LOOP_DATA)/loop/flows.log:" >&2; \
	tail -n 20 $(LOOP_DATA)/loop/flows.log >&2; rm -f $(LOOP_DATA)/loop/flows.pid; exit 1

flows-down:  ## stop the flow server
	$(call stop,flow server,$(LOOP_DATA)/loop/flows.pid)

trigger-up:  ## start the webhook trigger (Label Studio events start a run when a milestone is crossed)
	$(call start,webhook trigger,$(LOOP_DATA)/loop/trigger.pid,$(LOOP_DATA)/loop/trigger.log,env PREFECT_API_URL=$(PREFECT_URL)/api $(LOOP_BIN)/docclass flows trigger-webhook)
	@echo "webhook trigger started (log $(LOOP_DATA)/loop/trigger.log)"

trigger-down:  ## stop the webhook trigger
	$(call stop,webhook trigger,$(LOOP_DATA)/loop/trigger.pid)
