# The two commands of the README: `make run` (main job) and `make test` (tests). Both set up .venv first.
# `make test-published` holds each shipped model to its published figure on DSB2018 and runs the int8 rebuild tests
# and the Ray cluster tests (minutes; CI runs it too).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
# The tests start hundreds of Python processes (the CLI as users run it); with bytecode cached, each saves about
# 0.4 s of compiling unetpp's own modules, and pytest keeps its rewritten test modules. A shell that sets
# PYTHONDONTWRITEBYTECODE would make every one of them compile again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup run test test-published lint builds
setup: $(STAMP)

# torch is pinned to 2.13.0 and installed first: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e '.[dev,train,openvino,bench,ray,zoo,serve,napari]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/unetpp run $(ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports

# The published figures of the shipped models on the real data, the tests that rebuild int8 models and those that
# start a local Ray cluster or Ray Serve take minutes: `make test-published` (CI runs both).
test: lint
	$(PY) -m pytest -q -m "not published and not heavy and not cluster"

test-published: setup
	$(PY) -m pytest -q -m "published or heavy or cluster"

# The shipped models' verified int8 builds (src/unetpp/weights/builds/, with their check records and a manifest of
# SHA-256s), made from the committed checkpoints as a first use would make them: rerun whenever a checkpoint changes.
# 4.7 CPU-minutes and 5.7 GB peak RSS (16 min wall on the shared 2-core machine at load 10-13; about 3 min when
# quiet). BUILD_BACKENDS=openvino,onnxruntime also ships ONNX Runtime's (the default where OpenVINO is not installed).
BUILD_BACKENDS ?= openvino
builds: setup
	$(PY) -m unetpp.compile.make_builds --backends $(BUILD_BACKENDS)
