# The two commands of the README: `make app` (set up, build the demo shop, start the dashboard)
# and `make test` (set up with test tools and Chromium, run every test). Both are idempotent.
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CPU torch from the local wheel; GPU users: see README ("GPU").
TORCH  ?= torch==2.13.0
PORT   ?= 8501
export HF_HUB_OFFLINE=1
export HF_HUB_DISABLE_PROGRESS_BARS=1

.PHONY: app test test-fast setup setup-dev chromium bench clean

# pip prints what it collects and downloads (a fresh install takes minutes: the lines show it is moving)
$(VENV)/.installed: pyproject.toml
	@echo "== setting up $(VENV): pip, CPU torch, then CrossRec and its libraries (a few minutes the first time)"
	python3 -m venv $(VENV)
	$(PIP) install --progress-bar on --upgrade pip
	$(PIP) install --progress-bar on "$(TORCH)"
	$(PIP) install --progress-bar on -e .
	@if $(PIP) list 2>/dev/null | grep -iE '^(nvidia-|triton)' ; then \
	  echo "CUDA packages were pulled in: install torch first (see README)"; exit 1; fi
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
	  || { echo "could not install Debian chromium"; exit 1; }; }

# served at once; on the first start the dashboard builds the demo shop and shows each step meanwhile
app: setup
	$(VENV)/bin/crossrec app --port $(PORT)

test: setup-dev chromium
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: setup-dev
	$(PY) -m pytest -q -m "not slow"

bench: setup
	for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) test-output benchmarks/out
