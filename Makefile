# Everything runs in ./.venv, created on first use. `make demo` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export YOLO_OFFLINE ?= 1

.PHONY: install demo demo-fast test test-slow lint docs wheel-check clean

$(BIN)/yolo-prune: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,edge]"
	touch $@

install: $(BIN)/yolo-prune

demo: install
	$(BIN)/yolo-prune demo --out runs/demo

demo-fast: install
	rm -rf runs/demo-fast runs/demo-fast-segment runs/demo-fast-pose runs/demo-fast-obb
	$(BIN)/yolo-prune demo --fast --out runs/demo-fast
	for task in segment pose obb; do $(BIN)/yolo-prune demo --fast --task $$task --out runs/demo-fast-$$task || exit 1; done

# Two pytest-xdist workers (the CI machine's two cores), whole files each: module fixtures are built once.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The edge formats' tests load every edge runtime (OpenVINO, ncnn, MNN, ExecuTorch, LiteRT) into one process: they
# run in a pytest process of their own, so that those libraries' threads and signal handling cannot reach the
# other tests (a SIGALRM watchdog test hung in a CI worker that had run them; not reproduced in isolation).
EDGE_TESTS := tests/deploy/test_edge.py

test: install
	$(PYTEST) --ignore=$(EDGE_TESTS)
	$(BIN)/python -m pytest -q $(EDGE_TESTS)

test-slow: install
	$(PYTEST) --runslow --ignore=$(EDGE_TESTS)
	$(BIN)/python -m pytest -q --runslow $(EDGE_TESTS)

lint: install
	$(BIN)/ruff check yolo_prune tests benchmarks
	$(BIN)/ruff format --check yolo_prune tests benchmarks

# The README's option tables are generated from --help (tests/app/test_docs.py fails when they differ).
docs: install
	$(BIN)/python -m yolo_prune.app.reference README.md

# The wheel, installed in a fresh venv outside the checkout: --version, demo --fast and the README's Python example.
wheel-check: install
	.ci/wheel-check

clean:
	rm -rf $(VENV) runs .pytest_cache
