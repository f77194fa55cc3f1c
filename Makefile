# Make targets are the user interface. Every target sets itself up first.
PY      := .venv/bin/python
PIP     := .venv/bin/pip -q --disable-pip-version-check
SHARDS  ?= shards
WORKERS ?= 2
DEMO    ?= demo-out
export RAY_ENABLE_UV_RUN_RUNTIME_ENV := 0

.PHONY: setup test test-all demo shards train eval bench mutation clean

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
	# DeepSpeed compiles a small shared-memory op on first use (~1 min): do it once, here
	$(PY) -c "from deepspeed.comm.torch import build_shm_op; build_shm_op()"
	touch $@

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q -m "not slow" tests

# everything, the slow tests too (every converter's bad-input corpus, CLI runs): what CI runs
test-all: setup
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

# the whole pipeline on generated data: reports/demo/index.html
demo: setup
	$(PY) -m demo --out $(DEMO) --report reports/demo --workers $(WORKERS)

# A whole corpus into one root (convert, validate, cards, audit; a rerun skips what is current):
#   make shards CORPUS=corpora/robotron_drive.yaml [SHARDS=shards] [WORKERS=8]
# or one real nuScenes root: make shards NUSCENES=/data/nuscenes [SHARDS=shards] [WORKERS=8]
shards: setup
	@test -n "$(CORPUS)$(NUSCENES)" || { echo "set CORPUS=corpus.yaml, or NUSCENES=/path/to/nuscenes"; exit 2; }
	$(if $(CORPUS),$(PY) -m dataengine build $(CORPUS) --out $(SHARDS) --workers $(WORKERS),\
	  $(PY) -m dataengine convert nuscenes --src $(NUSCENES) --out $(SHARDS) --workers $(WORKERS) && \
	  $(PY) -m dataengine validate $(SHARDS))

# Fine-tune through a curriculum (re-running the same command resumes):
#   make train                             the demo's tiny model (demo-out/model) through curricula/demo.yaml on the demo fixtures
#   make train CURRICULUM=robotron_drive MODEL=/models/llava-ov SHARDS=shards RUN=runs/x NPROC=8 DS=zero3.json
CURRICULUM ?= demo
DS         ?= zero2.json
NPROC      ?= 1
TRAIN_SHARDS = $(if $(filter command line environment,$(origin SHARDS)),$(SHARDS),$(DEMO)/shards)
TRAIN_MODEL  = $(if $(filter command line environment,$(origin MODEL)),$(MODEL),$(DEMO)/model)
train: setup
	$(if $(filter 1,$(NPROC)),$(PY) -m train,$(PY) -m torch.distributed.run --standalone --nproc_per_node $(NPROC) -m train) \
	    --curriculum $(CURRICULUM) --model $(TRAIN_MODEL) --shards $(TRAIN_SHARDS) --out $(or $(RUN),runs/$(CURRICULUM)) \
	    --deepspeed-config $(DS)

# Evaluate on seen and unseen benchmarks, write predictions, scores and the report:
#   make eval                              the random tiny model on the demo fixtures (a quick check)
#   make eval RUN=runs/x EVAL_SHARDS=shards EVAL_ARGS=   a run, zero-shot base vs fine-tuned, in full
# EVAL_ARGS defaults to a short CPU check (4 samples per benchmark, 16 new tokens); empty it for real runs.
EVAL_SHARDS ?= $(DEMO)/shards
EVAL_OUT    ?= eval-out
MODEL       ?= tiny
BENCHMARKS  ?= seen unseen
EVAL_ARGS   ?= --limit 4 --max-new-tokens 16
eval: setup
	$(PY) -m eval $(if $(RUN),--run $(RUN) --compare,--model $(MODEL)) --benchmarks $(BENCHMARKS) \
	    --shards $(EVAL_SHARDS) --out $(EVAL_OUT) $(EVAL_ARGS)

bench: setup
	$(PY) benchmarks/convert.py --write-docs docs/performance.md
	$(PY) benchmarks/convert_hotspots.py --write-docs docs/performance.md
	$(PY) benchmarks/loader.py --write-docs docs/performance.md
	$(PY) benchmarks/train_step.py --write-docs docs/performance.md

# Mutation testing (not in CI: minutes per module), one module at a time in a scratch copy;
# the report goes to docs/testing.md.  make mutation [MODULES="dataengine/schema.py ..."]
# [MUTATION_ARGS=--survivors] (re-test only the last run's survivors, after adding tests)
mutation: setup
	$(PY) tests/mutation.py $(MUTATION_ARGS) $(MODULES)

clean:
	rm -rf $(DEMO) $(EVAL_OUT) reports bench-out .pytest_cache
