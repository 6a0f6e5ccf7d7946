# Label Studio server in its own venv, headless on loopback. Included by the Makefile; also usable alone:
#   make -f labeling/labelstudio.mk labelstudio-up LS_PORT=8089 LS_DATA=/tmp/ls LS_ENV_FILE=/tmp/ls/.env
# Recipe and pitfalls: ../shared/STACK.md ("Label Studio server"). The API token is never printed.
include $(dir $(lastword $(MAKEFILE_LIST)))../mk/server.mk

LS_VERSION := 1.23.2
LS_VENV := .venv-labelstudio
LS_PYTHON ?= python3
LS_HOST := 127.0.0.1
LS_PORT ?= 8080
LS_DATA ?= .data/labelstudio
LS_ENV_FILE ?= .env
LS_EMAIL ?= admin@example.com
LS_TIMEOUT ?= 90
LS_CONSTRAINTS := labeling/requirements-labelstudio.txt
LS_STAMP := $(LS_VENV)/.installed-$(LS_VERSION)
LS_PID = $(LS_DATA)/server.pid
LS_LOG = $(LS_DATA)/server.log
LS_URL = http://$(LS_HOST):$(LS_PORT)

.PHONY: labelstudio-install labelstudio-env labelstudio-up labelstudio-down

labelstudio-install: $(LS_STAMP)  ## Label Studio in its own venv (.venv-labelstudio), pinned

$(LS_STAMP): $(LS_CONSTRAINTS)
	@test -x $(LS_VENV)/bin/python || $(LS_PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q --disable-pip-version-check label-studio==$(LS_VERSION) -c $(LS_CONSTRAINTS) 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $(LS_STAMP)

# Appends the missing DOCCLASS_* entries (URL, admin e-mail, random password, token, webhook secret).
labelstudio-env:
	@touch $(LS_ENV_FILE) && chmod 600 $(LS_ENV_FILE)
	@add() { grep -q "^$$1=" $(LS_ENV_FILE) || echo "$$1=$$2" >> $(LS_ENV_FILE); }; \
	random() { $(LS_PYTHON) -c "import secrets; print(secrets.token_hex($$1))"; }; \
	add DOCCLASS_LABEL_STUDIO_URL "http://$(LS_HOST):$(LS_PORT)"; \
	add DOCCLASS_LABEL_STUDIO_EMAIL "$(LS_EMAIL)"; \
	add DOCCLASS_LABEL_STUDIO_PASSWORD "$$(random 16)"; \
	add DOCCLASS_LABEL_STUDIO_TOKEN "$$(random 20)"; \
	add DOCCLASS_LOCAL_FILES_ROOT "$(LS_DATA)/files"; \
	add DOCCLASS_WEBHOOK_SECRET "$$(random 16)"

# The server's environment: the admin user and token from $(LS_ENV_FILE), local files served from $(LS_DATA), no
# outbound calls, no stray HOST/PORT/USERNAME/PASSWORD/DEBUG from the caller (../shared/STACK.md).
# LS_LAUNCHER: a command the server's is prefixed with (the scale profile's, mk/scale.mk, adds its database).
ls-value = $$(grep -m1 '^$(1)=' $(LS_ENV_FILE) | cut -d= -f2-)
LS_LAUNCHER ?=
LS_COMMAND = $(LS_LAUNCHER) env -u HOST -u PORT -u USERNAME -u PASSWORD -u DEBUG \
  LABEL_STUDIO_BASE_DATA_DIR="$(abspath $(LS_DATA))/server" \
  LABEL_STUDIO_USERNAME="$(call ls-value,DOCCLASS_LABEL_STUDIO_EMAIL)" \
  LABEL_STUDIO_PASSWORD="$(call ls-value,DOCCLASS_LABEL_STUDIO_PASSWORD)" \
  LABEL_STUDIO_USER_TOKEN="$(call ls-value,DOCCLASS_LABEL_STUDIO_TOKEN)" \
  LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
  LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true \
  LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true \
  LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="$(abspath $(LS_DATA))" \
  LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false SENTRY_DSN= FRONTEND_SENTRY_DSN= \
  USE_DEFAULT_BANNED_SUBNETS=false \
  USER_ADDITIONAL_BANNED_SUBNETS=0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,169.254.0.0/16,172.16.0.0/12,192.168.0.0/16,224.0.0.0/4,240.0.0.0/4 \
  $(LS_VENV)/bin/label-studio start --no-browser --internal-host $(LS_HOST) --port $(LS_PORT)

labelstudio-up: labelstudio-install labelstudio-env  ## start Label Studio on 127.0.0.1:$(LS_PORT), wait for health
	@mkdir -p $(LS_DATA)/server $(LS_DATA)/files
	$(call start-server,Label Studio $(LS_VERSION),$(LS_PID),$(LS_LOG),$(LS_URL)/health,$(LS_TIMEOUT),$(LS_COMMAND),LS_PORT)
	@echo "Label Studio at $(LS_URL) (user $(call ls-value,DOCCLASS_LABEL_STUDIO_EMAIL); password and token in $(LS_ENV_FILE))"

labelstudio-down:  ## stop the Label Studio started by labelstudio-up
	$(call stop-server,Label Studio,$(LS_PID))
