# autalk — two commands for a newcomer: `make reproduce` and `make test`.
# Everything else here is a building block of those two.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= quick
# Optional extra package index for torch alone, e.g. a CPU-only build on a machine without a GPU:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: reproduce test venv pytest nbval browser lint check-notebooks notebooks bench clean-runs lock

## The main job: corpus + every notebook in order with papermill (quick profile by default).
reproduce: $(STAMP)
	@mkdir -p runs/$(PROFILE)/executed figures
	@set -e; for nb in $(NOTEBOOKS); do \
	  echo "==> papermill $$nb (profile $(PROFILE))"; \
	  $(BIN)/papermill --kernel python3 --log-output --progress-bar -f params/$(PROFILE).yaml \
	    "$$nb" "runs/$(PROFILE)/executed/$$(basename $$nb)"; \
	done
	@echo "Executed notebooks: runs/$(PROFILE)/executed/   Figures: figures/"

## Unit tests, then nbval over every notebook prepared with the smoke profile.
test: $(STAMP) lint check-notebooks pytest nbval browser

venv: $(STAMP)
$(STAMP): requirements.txt requirements-lock.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, alone and pinned, so nothing can pull a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -r requirements.txt -c requirements-lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

check-notebooks: $(STAMP)
	$(BIN)/python -m autalk.nbcheck notebooks

pytest: $(STAMP)
	$(BIN)/python -m pytest -q tests --ignore=tests/test_browser.py

nbval: $(STAMP)
	@rm -rf runs/smoke/prepared && mkdir -p runs/smoke/prepared
	@set -e; for nb in $(NOTEBOOKS); do \
	  $(BIN)/papermill --prepare-only --kernel python3 -f params/smoke.yaml "$$nb" "runs/smoke/prepared/$$(basename $$nb)" 2>/dev/null; \
	done
	$(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 runs/smoke/prepared

## Notebook 07 in a real browser (JupyterLab + headless Chromium); needs nbval's smoke run first.
## Skipped, with the reason, where no Chromium is installed (`apt-get install chromium chromium-driver`).
browser: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -rs tests/test_browser.py

bench: $(STAMP)
	@set -e; for b in benchmarks/*.py; do echo "==> $$b"; $(BIN)/python $$b; done

clean-runs:
	rm -rf runs

## Regenerate the full lock from the current environment.
lock: $(STAMP)
	( echo "# Full resolved environment (pip freeze); regenerate with make lock."; \
	  $(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==.*/torch==2.13.0/' ) > requirements-lock.txt
