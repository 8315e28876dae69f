# Everything runs in ./.venv, created on first use. `make demo` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export YOLO_OFFLINE ?= 1

.PHONY: install demo demo-fast test test-slow lint clean

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

test: install
	$(PYTEST)

test-slow: install
	$(PYTEST) --runslow

lint: install
	$(BIN)/ruff check yolo_prune tests benchmarks
	$(BIN)/ruff format --check yolo_prune tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
