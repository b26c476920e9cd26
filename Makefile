# Every workflow of the kit. `make demo` and `make test` build .venv themselves when missing.
PYTHON ?= python3
# A second environment beside the first: make setup PYTHON=python3.10 VENV=.venv310 (docs/testing.md)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The track course.toml chooses (track = "torch" or "numpy"): which solutions/ and assignment/ folder demo grades
TRACK  ?= $(or $(shell sed -n 's/^track *= *"\([a-z]*\)".*/\1/p' course.toml 2>/dev/null),torch)

.PHONY: setup test test-fast test-gpu demo stubs check-stubs grade preview autograder student handouts bench slurm-up slurm-down clean

setup: $(STAMP)

$(STAMP): requirements/grader.txt requirements/handouts.txt requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) tools/worker_python_access.py
	touch $(STAMP)

stubs: $(STAMP)
	$(PY) -m autograder stubs

check-stubs: $(STAMP)
	$(PY) -m autograder stubs --check

test: $(STAMP)
	$(PY) -m pytest -q

# The fast tier: unit tests of the engine's pure functions and the layout checks (under a minute)
test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit tests/test_layout.py

# Every GPU-dependent test, then a summary (they skip without CUDA). With a machine's own CUDA torch
# instead of .venv: make test-gpu PY=python3
test-gpu: $(if $(filter command line,$(origin PY)),,$(STAMP))
	PYTHONPATH=. $(PY) tools/test_gpu.py

demo: $(STAMP)
	@echo "== Grading the reference solutions of the $(TRACK) track (expect full marks) =="
	$(PY) -m autograder grade solutions/$(TRACK) -o $(VENV)/demo-solutions.json --track $(TRACK)
	@echo
	@echo "== Grading the student stubs of the $(TRACK) track (expect zero, with each stub's message) =="
	$(PY) -m autograder grade assignment/$(TRACK) -o $(VENV)/demo-assignment.json --track $(TRACK)
	@echo
	@echo "results.json files: $(VENV)/demo-solutions.json $(VENV)/demo-assignment.json"

# make grade SUB=path/to/submission [OUT=results.json] [DEVICE=auto]
SUB ?= assignment/$(TRACK)
OUT ?= results.json
DEVICE ?= auto
grade: $(STAMP)
	$(PY) -m autograder grade $(SUB) -o $(OUT) --device $(DEVICE)

# A results.json as Gradescope shows it, in one HTML page: make preview RESULTS=results.json [PAGE=preview.html]
RESULTS ?= results.json
PAGE ?= preview.html
preview: $(STAMP)
	$(PY) tools/preview_results.py $(RESULTS) $(PAGE)

# Gradescope's autograder zip: upload dist/autograder.zip (course.toml is checked first)
autograder: $(STAMP)
	$(PY) -m autograder package -o dist/autograder.zip

# The handouts in dist/handouts/: the write-up (writeup.html, offline with MathML, and writeup.pdf via
# Typst) and the student notebooks (jupytext sources -> otter assign), with what they need beside them
handouts: $(STAMP)
	$(PY) -m autograder handouts

# The student release: stubs, gradient_check.py, README, the public checker (python check.py), handouts
student: handouts
	$(PY) -m autograder student

# Timings: one submission end to end, a batch of 100, the reference solutions vs torch.nn; prints a
# table and writes dist/bench.json (make bench BENCH_ARGS="--quick" for a fast, rough run)
bench: $(STAMP)
	$(PY) -m autograder bench -o dist/bench.json $(BENCH_ARGS)

# A one-node Slurm on this machine (root; Debian's slurm-wlm and munge), for docs/regrading.md's script;
# then: export SLURM_CONF=$(SLURM_DIR)/slurm.conf
SLURM_DIR ?= /tmp/autograder-slurm
slurm-up:
	$(PYTHON) tools/local_slurm.py up --dir $(SLURM_DIR)

slurm-down:
	$(PYTHON) tools/local_slurm.py down --dir $(SLURM_DIR)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
