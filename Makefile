# langchain-hf-chat developer commands. Every target sets itself up: `make test` and `make demo` work
# on a fresh clone with only Python 3.10+ and the package registries.
.PHONY: install test unit_tests integration_tests lint format demo bench build_check model clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PYTEST_FLAGS ?=

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# torch first, pinned to the CPU build on local disk: any other request pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[testing,local,agents]" -r requirements-dev.txt
	$(BIN)/python -m pip check
	@rm -f $(VENV)/.installed-*
	@touch $@

model: install
	$(BIN)/python -m langchain_hf_chat.testing.model_store fetch

test: install model
	$(BIN)/python -m pytest tests/unit_tests --disable-socket --allow-hosts=127.0.0.1,localhost,::1 -q $(PYTEST_FLAGS)
	$(BIN)/python -m pytest tests/integration_tests -q $(PYTEST_FLAGS)

unit_tests: install
	$(BIN)/python -m pytest tests/unit_tests --disable-socket --allow-hosts=127.0.0.1,localhost,::1 -q $(PYTEST_FLAGS)

integration_tests: install model
	$(BIN)/python -m pytest tests/integration_tests -q $(PYTEST_FLAGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy langchain_hf_chat

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: install model
	$(BIN)/python examples/notebook_walkthrough.py $(DEMO_ARGS)

bench: install
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

build_check: install
	bash scripts/build_check.sh

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
