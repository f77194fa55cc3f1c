# Make targets are the user interface. Every target sets itself up first.
PY      := .venv/bin/python
PIP     := .venv/bin/pip -q --disable-pip-version-check
SHARDS  ?= shards
WORKERS ?= 2
DEMO    ?= demo-out
REAL    ?= $(if $(DATAENGINE_REAL_SAMPLES),$(DATAENGINE_REAL_SAMPLES),$(wildcard ../shared/realdata))
export RAY_ENABLE_UV_RUN_RUNTIME_ENV := 0

.PHONY: setup test demo shards bench clean

setup: .venv/.installed

# torch first, from the pinned spec that picks the CPU wheel on machines without CUDA;
# every later install obeys constraints.txt so nothing can replace it.
.venv/.installed: pyproject.toml constraints.txt
	python3 -m venv .venv
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e '.[dev]'
	# Official Waymo protos: the wheel's own requirements pin TensorFlow; the protos need only protobuf.
	$(PIP) install --no-deps waymo-open-dataset-tf-2-12-0==1.6.7
	$(PY) -m dataengine.envcheck
	touch $@

test: setup
	$(PY) -m pytest -q tests

demo: setup
	$(PY) -m dataengine.demo --out $(DEMO) --workers $(WORKERS)

# Convert a real nuScenes root: make shards NUSCENES=/data/nuscenes [SHARDS=shards] [WORKERS=8]
shards: setup
	@test -n "$(NUSCENES)" || { echo "set NUSCENES=/path/to/nuscenes (a dataroot with v1.0-*/ tables)"; exit 2; }
	$(PY) -m dataengine convert nuscenes --src $(NUSCENES) --out $(SHARDS) --workers $(WORKERS)
	$(PY) -m dataengine validate $(SHARDS)

bench: setup
	$(PY) benchmarks/convert.py --write-docs docs/performance.md

clean:
	rm -rf $(DEMO) .pytest_cache
