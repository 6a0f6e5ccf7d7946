# One way to run a server in the background, used by every `*-up` / `*-down` target (labeling/labelstudio.mk,
# flows/mlflow.mk, flows/loop.mk, serving/bentoml.mk) and, through those targets, by the test fixtures and
# `make bench-serve`. Servers listen on loopback only.
#
#   $(call start-server,<name>,<pid file>,<log>,<health>,<timeout s>,<command>[,<port variable>])
#     <health>         an http(s) URL that answers 2xx when the server is ready, or tcp://127.0.0.1:<port>
#     <port variable>  the make variable holding the port the server binds (checked free before the start)
#   - a live process in <pid file> whose <health> answers: "already running", success; one that does not answer:
#     error (stop it first with the matching `-down` target);
#   - the port in use by something else: error naming <port variable>, so the caller knows what to set;
#   - otherwise <command> starts in its own session (setsid) with its output appended to <log>, and <health> is
#     polled once a second for up to <timeout s>; when the process exits or the time runs out: error, the last
#     30 lines of <log>, the process group stopped, the pid file removed.
#   A success line follows; the calling target adds its own line with URLs and paths.
#
#   $(call stop-server,<name>,<pid file>): SIGTERM to the process group, up to 15 s for all of it to exit, then
#   SIGKILL.
ifndef DOCCLASS_SERVER_MK
DOCCLASS_SERVER_MK := 1

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

# $(call server-probe,<health>): a shell condition, true when <health> answers.
server-probe = $(if $(filter tcp://%,$(1)),(exec 3<>/dev/tcp/$(subst :,/,$(patsubst tcp://%,%,$(1)))) 2>/dev/null,curl -fsS -m 2 -o /dev/null "$(1)" 2>/dev/null)

define start-server
	@mkdir -p "$(dir $(2))" "$(dir $(3))"; \
	if [ -f "$(2)" ] && kill -0 "$$(cat "$(2)")" 2>/dev/null; then \
	  if $(call server-probe,$(4)); then echo "$(1) already running (pid $$(cat "$(2)"))"; exit 0; fi; \
	  echo "error: $(1) (pid $$(cat "$(2)")) runs but $(4) does not answer; make $(@:-up=-down) first" >&2; exit 1; \
	fi; \
	$(if $(7),if $(call server-probe,tcp://127.0.0.1:$($(7))); then \
	  echo "error: port $($(7)) on 127.0.0.1 is in use: expected it free for $(1) (set $(7))" >&2; exit 1; \
	fi;) \
	echo "--- $$(date '+%F %T') make $@: starting $(1)" >> "$(3)"; \
	setsid nohup $(6) >> "$(3)" 2>&1 < /dev/null & echo $$! > "$(2)"; \
	echo "starting $(1) (pid $$(cat "$(2)"), log $(3))"; \
	for _ in $$(seq 1 $(5)); do \
	  if $(call server-probe,$(4)); then echo "$(1) is up"; exit 0; fi; \
	  kill -0 "$$(cat "$(2)")" 2>/dev/null || break; \
	  sleep 1; \
	done; \
	if kill -0 "$$(cat "$(2)")" 2>/dev/null; then \
	  echo "error: $(1) did not answer $(4) within $(5) s; last lines of $(3):" >&2; \
	else echo "error: $(1) exited before answering $(4); last lines of $(3):" >&2; fi; \
	tail -n 30 "$(3)" >&2; \
	kill -TERM -- -"$$(cat "$(2)")" 2>/dev/null || true; rm -f "$(2)"; exit 1
endef

define stop-server
	@if [ ! -f "$(2)" ]; then echo "$(1) is not running (no $(2))"; exit 0; fi; \
	pid="$$(cat "$(2)")"; \
	alive() { kill -0 -- -"$$pid" 2>/dev/null || kill -0 "$$pid" 2>/dev/null; }; \
	if alive; then \
	  kill -TERM -- -"$$pid" 2>/dev/null || kill -TERM "$$pid"; \
	  for _ in $$(seq 1 30); do alive || break; sleep 0.5; done; \
	  if alive; then kill -KILL -- -"$$pid" 2>/dev/null || kill -KILL "$$pid"; fi; \
	  echo "$(1) stopped (pid $$pid)"; \
	else echo "$(1) was not running (stale $(2))"; fi; \
	rm -f "$(2)"
endef

endif
