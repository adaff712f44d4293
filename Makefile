# Two commands do everything on a fresh machine (see README):
#   make tutorial   run every notebook in order, headless (full mode), figures kept inline
#   make test       unit tests + every notebook in QUICK mode (what CI runs)
# Both create .venv and install the package first when needed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.gesture-installed
# The torch/torchvision pair that installs offline on the project machines. Installed
# first, only when no torch is present; override for your machine, e.g.
#   make test TORCH_SPEC="torch torchvision"
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
NOTEBOOKS  := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
# The student edition (`make student`: solutions removed); CI runs it after the
# teacher's notebooks, so it finds their artefacts and stays a quick second pass.
STUDENT    := $(sort $(wildcard notebooks/student/[0-9][0-9]_*.ipynb))
# The live demo alone (your camera, in the browser); QUICK-tested after notebook 06, whose
# recorded stream it plays, and run in Chromium by `make browser-test`.
DEMO       := notebooks/live_demo.ipynb
# What the browser test needs from a full `make tutorial` (made when missing).
FULL_MODEL := artifacts/vit_temporal.pt artifacts/vit_temporal.encoder.onnx \
              artifacts/vit_temporal.head.onnx artifacts/nb06_stream.mp4
EXECUTED   ?= artifacts/executed

.PHONY: install tutorial test unit notebooks student lint lab clean help browser-deps browser-test

help:
	@echo "make tutorial  - set up, then run all notebooks in order (full mode) into $(EXECUTED)/"
	@echo "make test      - set up, then unit tests + notebooks in QUICK mode (CI)"
	@echo "make lab       - set up, then start JupyterLab"
	@echo "make browser-test - JupyterLab + headless Chromium tests (tests/browser; installs chromium)"
	@echo "make student   - rebuild notebooks/student/ (solutions removed) after editing a notebook"
	@echo "make unit | notebooks | lint | clean"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

tutorial: $(STAMP)
	@mkdir -p $(EXECUTED)
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; start=$$(date +%s); \
	  env -u MPLBACKEND $(BIN)/jupyter nbconvert --to notebook --execute \
	    --ExecutePreprocessor.timeout=-1 --output-dir $(EXECUTED) "$$nb" || exit 1; \
	  echo "   $$nb ran in $$(( $$(date +%s) - start )) s"; \
	done
	$(BIN)/python tools/check_executed.py $(EXECUTED)
	@echo "Executed notebooks are in $(EXECUTED)/, models and figures in artifacts/"

test: $(STAMP) lint
	GESTURE_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider \
	  tests --ignore=tests/browser $(NOTEBOOKS) $(DEMO) $(STUDENT) --nbval-lax --nbval-current-env

unit: $(STAMP)
	GESTURE_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider tests --ignore=tests/browser

# Real-browser tests (tests/browser): JupyterLab from .venv driven by Debian's chromium
# through Playwright, which never downloads a browser. CI runs as root, so apt works.
browser-deps:
	@command -v chromium >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

browser-test: $(STAMP) browser-deps
	@for f in $(FULL_MODEL); do test -f $$f || { echo "$$f missing: running make tutorial"; \
	  $(MAKE) tutorial || exit 1; break; }; done
	GESTURE_BROWSER_REQUIRED=1 MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider tests/browser

notebooks: $(STAMP)
	GESTURE_QUICK=1 MPLBACKEND=Agg $(BIN)/python -m pytest -p no:cacheprovider \
	  $(NOTEBOOKS) $(DEMO) $(STUDENT) --nbval-lax --nbval-current-env

student: $(STAMP)
	$(BIN)/python tools/make_student.py

lint: $(STAMP)
	$(BIN)/ruff check gesture_utils tests benchmarks tools

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf artifacts .pytest_cache .ruff_cache
