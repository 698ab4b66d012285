# loaxa: two commands do everything. `make demo` runs the system; `make test` tests it.
# Both set themselves up: system packages (apt-get, as root), a virtual environment, and
# the project with its extras.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
# command:package pairs the project needs from the system (or file:package)
SYSTEM_DEPS := mosquitto:mosquitto mosquitto_pub:mosquitto-clients ffmpeg:ffmpeg \
	ffprobe:ffmpeg espeak-ng:espeak-ng chromium:chromium \
	shellcheck:shellcheck icecast2:icecast2 \
	/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core
export PATH := /usr/sbin:/sbin:$(PATH)

.PHONY: demo test lint screenshots system-deps venv clean

demo: system-deps $(STAMP)
	$(BIN)/loaxa demo

# The suite on SQLite, then again on PostgreSQL where one answers on 127.0.0.1:5432 (each
# test in a database of its own; the camera, audio and node-only tests need no database).
test: system-deps $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	@if $(BIN)/python tests/postgres_reachable.py; then \
	  echo "== the same tests with every controller on PostgreSQL"; \
	  LOAXA_TEST_DATABASE=postgres $(BIN)/python -m pytest --ignore=tests/camera \
	    --ignore=tests/broadcasts --ignore=tests/edge; \
	fi

# Refresh the pictures in docs/screenshots/ (the README shows them) from the browser tests.
screenshots: system-deps $(STAMP)
	LOAXA_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/web -q

lint: $(STAMP)
	$(BIN)/ruff check .

system-deps:
	@missing=""; for pair in $(SYSTEM_DEPS); do \
		cmd=$${pair%%:*}; pkg=$${pair##*:}; \
		{ [ -e "$$cmd" ] || command -v $$cmd >/dev/null 2>&1; } || missing="$$missing $$pkg"; \
	done; \
	missing=$$(echo $$missing | tr ' ' '\n' | sort -u | tr '\n' ' '); \
	if [ -n "$$(echo $$missing | tr -d ' ')" ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "installing system packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing system packages:$$missing"; \
			echo "install them with: sudo apt-get install$$missing   (then run make again)"; \
			exit 1; \
		fi; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

clean:
	rm -rf .run .pytest_cache .ruff_cache
