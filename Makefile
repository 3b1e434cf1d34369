# The two commands of the README:  `make search`  (set-up + main job)  and  `make test`.
# Both create .venv on first use. torch is installed first, pinned to the local CPU wheel
# (constraints.txt), so nothing resolves a multi-GB CUDA build. The tests also install the
# [tflite] extra (litert-torch, ai-edge-litert; ~2 min more the first time), so the TFLite export
# and the aarch64 device-runner test run; the quick start does not need it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= onnx,test
TEST_EXTRAS ?= onnx,tflite,test
export RAY_USAGE_STATS_ENABLED := 0
export ORT_DISABLE_TELEMETRY := 1

.PHONY: setup test search bench clean
setup: $(VENV)/.ghostnas-$(EXTRAS)

# one stamp per set of extras: installing more extras later adds to the same .venv
$(VENV)/.ghostnas-%: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$*]"
	touch $@

test: $(VENV)/.ghostnas-$(TEST_EXTRAS)
	$(BIN)/python -m pytest -q

search: setup
	$(BIN)/ghostnas search --budget 150MFLOPs

bench: setup
	$(BIN)/python benchmarks/cost_eval.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
