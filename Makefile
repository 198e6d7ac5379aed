# Two entry points: `make demo` (the offline main job) and `make test`.
# Both create .venv/ at the repo root and install what they need, system packages included.
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench system-deps

system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -e ".[dev]"
	touch $(STAMP)

test: system-deps $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

demo: system-deps $(STAMP)
	$(PYTHON) scripts/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check hf_add scripts tests
	$(VENV)/bin/ruff format --check hf_add scripts tests
