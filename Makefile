# Two entry points: `make demo` (the offline main job) and `make test`.
# Both create .venv/ at the repo root and install what they need, system packages included.
VENV := .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

CONSTRAINTS := constraints.txt

.PHONY: demo test lint bench system-deps constraints

system-deps:
	@missing=""; \
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# constraints.txt pins every package to the version CI last passed with (refresh: `make constraints`).
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

# After changing dependencies: install without the pins, run the tests, then write the versions that passed.
constraints:
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade -e ".[dev]"
	$(PYTHON) -m pytest -q
	$(PYTHON) -m pip list --format=freeze --exclude-editable --exclude pip --exclude setuptools > $(CONSTRAINTS)

test: system-deps $(STAMP)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

demo: system-deps $(STAMP)
	$(PYTHON) -m hf_add.research.demo

lint: $(STAMP)
	$(VENV)/bin/ruff check hf_add scripts tests
	$(VENV)/bin/ruff format --check hf_add scripts tests
