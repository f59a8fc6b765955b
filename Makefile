# Two commands: `make test` and `make demo`. Both create .venv and install the
# project on first use; re-running skips the install unless pyproject.toml changed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export OMP_NUM_THREADS ?= 2

.PHONY: install test test-all lint demo bench clean data-sources data generalist

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-torch.sh
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing torch (once) ..."
	@scripts/install-torch.sh $(BIN)/python
	@echo "installing gato-agent and its dependencies (once) ..."
	@$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/gato bench

# Data, a few minutes of training, then play / caption / chat / scores into demo/
# (re-running skips what is done; `gato demo --help`).
demo: $(STAMP)
	$(BIN)/gato demo --out demo

clean:
	rm -rf $(VENV) build *.egg-info

# Offline data sources for `gato data ...` (Debian packages; tests never need them).
DATA_PACKAGES := fortunes fortunes-min wordnet-base dict-gcide debian-faq jargon-text \
                 python3-doc dataset-fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

data-sources:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(DATA_PACKAGES)

data: $(STAMP)
	$(BIN)/gato data all --data-dir data

# The CPU generalist (issue 12): data, about 2 hours of training on 2 cores, evaluation.
generalist: $(STAMP)
	GATO=$(BIN)/gato scripts/generalist.sh
