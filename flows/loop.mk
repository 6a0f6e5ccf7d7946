# The retraining loop's servers on loopback: Prefect server (UI + API), the SMTP mail catcher, the flow server
# (`docclass flows serve`) and the webhook trigger (`docclass flows trigger-webhook`), each started and stopped by
# mk/server.mk (pid file, log, health wait; `-down` stops exactly the process group it started). Included by the
# Makefile; also usable alone:
#   make -f flows/loop.mk prefect-up PREFECT_PORT=4201 LOOP_DATA=/tmp/loop
include $(dir $(lastword $(MAKEFILE_LIST)))../mk/server.mk

LOOP_HOST := 127.0.0.1
LOOP_DATA ?= .data
LOOP_BIN ?= .venv/bin
PREFECT_PORT ?= 4200
PREFECT_TIMEOUT ?= 60
MAIL_DIR ?= $(LOOP_DATA)/mail
FLOWS_TIMEOUT ?= 60
TRIGGER_TIMEOUT ?= 60

# The mail catcher listens where notifications are sent and the webhook trigger where Label Studio posts: both
# ports are settings (DOCCLASS_SMTP_PORT, DOCCLASS_WEBHOOK_PORT, default in flows/settings.py), read once, when a
# recipe first needs them. Set MAIL_PORT / TRIGGER_PORT on the command line to override.
docclass-setting = $(or $(shell $(LOOP_BIN)/python -c 'from flows.settings import Settings; print(Settings().$(1))'),$(error could not read $(1) from flows.settings.Settings with $(LOOP_BIN)/python: expected an installed venv (make install)))
ifeq ($(origin MAIL_PORT),undefined)
MAIL_PORT = $(eval MAIL_PORT := $(call docclass-setting,smtp_port))$(MAIL_PORT)
endif
ifeq ($(origin TRIGGER_PORT),undefined)
TRIGGER_PORT = $(eval TRIGGER_PORT := $(call docclass-setting,webhook_port))$(TRIGGER_PORT)
endif

PREFECT_DIR = $(LOOP_DATA)/prefect
PREFECT_URL = http://$(LOOP_HOST):$(PREFECT_PORT)
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: prefect-up prefect-down mail-up mail-down flows-up flows-down trigger-up trigger-down

# PREFECT_LAUNCHER: a command the server's is prefixed with (the scale profile's, mk/scale.mk, adds its database).
PREFECT_LAUNCHER ?=
PREFECT_COMMAND = $(PREFECT_LAUNCHER) env PREFECT_HOME="$(abspath $(PREFECT_DIR))" \
  $(LOOP_BIN)/prefect server start --host $(LOOP_HOST) --port $(PREFECT_PORT)
MAIL_COMMAND = $(LOOP_BIN)/python -m flows.mailcatcher --host $(LOOP_HOST) --port $(MAIL_PORT) --out $(MAIL_DIR)
FLOWS_COMMAND = env PREFECT_API_URL=$(PREFECT_URL)/api $(LOOP_BIN)/docclass flows serve
TRIGGER_COMMAND = env PREFECT_API_URL=$(PREFECT_URL)/api \
  $(LOOP_BIN)/docclass flows trigger-webhook --host $(LOOP_HOST) --port $(TRIGGER_PORT)

prefect-up:  ## start the Prefect server (UI + API) on 127.0.0.1:$(PREFECT_PORT), wait for /api/health
	$(call start-server,Prefect server,$(PREFECT_DIR)/server.pid,$(PREFECT_DIR)/server.log,$(PREFECT_URL)/api/health,$(PREFECT_TIMEOUT),$(PREFECT_COMMAND),PREFECT_PORT)
	@echo "Prefect UI at $(PREFECT_URL)"

prefect-down:  ## stop the Prefect server started by prefect-up
	$(call stop-server,Prefect server,$(PREFECT_DIR)/server.pid)

mail-up:  ## start the SMTP mail catcher on 127.0.0.1:$(MAIL_PORT); mails land in $(MAIL_DIR)/*.eml
	$(call start-server,mail catcher,$(MAIL_DIR)/catcher.pid,$(MAIL_DIR)/catcher.log,tcp://$(LOOP_HOST):$(MAIL_PORT),20,$(MAIL_COMMAND),MAIL_PORT)
	@echo "mail catcher on $(LOOP_HOST):$(MAIL_PORT), mails in $(MAIL_DIR)"

mail-down:  ## stop the mail catcher
	$(call stop-server,mail catcher,$(MAIL_DIR)/catcher.pid)

flows-up:  ## serve the retrain flow as a Prefect deployment (interval: params loop.interval_seconds), runs in the UI
	$(call start-server,flow server,$(LOOP_DATA)/loop/flows.pid,$(LOOP_DATA)/loop/flows.log,$(PREFECT_URL)/api/deployments/name/retrain/docclass-retrain,$(FLOWS_TIMEOUT),$(FLOWS_COMMAND))
	@echo "flow server: deployment retrain/docclass-retrain (log $(LOOP_DATA)/loop/flows.log)"

flows-down:  ## stop the flow server
	$(call stop-server,flow server,$(LOOP_DATA)/loop/flows.pid)

trigger-up:  ## start the webhook trigger (Label Studio events start a run when a milestone is crossed)
	$(call start-server,webhook trigger,$(LOOP_DATA)/loop/trigger.pid,$(LOOP_DATA)/loop/trigger.log,http://$(LOOP_HOST):$(TRIGGER_PORT)/health,$(TRIGGER_TIMEOUT),$(TRIGGER_COMMAND),TRIGGER_PORT)
	@echo "webhook trigger on http://$(LOOP_HOST):$(TRIGGER_PORT)/webhook (log $(LOOP_DATA)/loop/trigger.log)"

trigger-down:  ## stop the webhook trigger
	$(call stop-server,webhook trigger,$(LOOP_DATA)/loop/trigger.pid)
