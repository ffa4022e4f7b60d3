# aitask-relay: `make demo` and `make test` are all a new user needs. Both create .venv when missing.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
TOOLS := .venv-tools
SAM   := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov
S_CLI := $(TOOLS)/s/node_modules/.bin/s
BUILD_DIR := .aws-sam/build
WHEELHOUSE := .wheelhouse
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: audit bench fuzz lock mutate soak help demo test unit integration lint build fc-package replay emulator clean

help:
	@echo "make demo      the aitask-relay command line against the bundled ROS emulator (create --wait, get, replay)"
	@echo "make test      lint + the whole test suite (unit, integration, infra)"
	@echo "make replay EVENT=events/fetch_task/one-task.json   aitask-relay replay: one sample event through its handler"
	@echo "make emulator  aitask-relay emulator: the ROS emulator on 127.0.0.1:8790 (Ctrl-C to stop)"
	@echo "make bench     benchmarks as ratios against baselines (bench/results.md)"
	@echo "make soak      fault-injection soak, 2,000 tasks: prints lost / duplicated per scenario"
	@echo "make mutate    mutation testing of the guarantee-bearing modules: killed % per module (MUTATE=errors ... for some, FRESH=1 all again)"
	@echo "make fuzz      hypothesis over every event shape, 10,000 examples per target; schemathesis over the HTTP API"
	@echo "make lint      ruff, mypy, cfn-lint (+ serverless rules), sam validate --lint, checkov"
	@echo "make build     sam build (arm64, no Docker) into $(BUILD_DIR)"
	@echo "make fc-package  Function Compute code.zip and layer.zip into out/aliyun/"

$(STAMP): pyproject.toml requirements-dev.txt layers/relay/requirements.txt layers/relay/requirements.in
	@py=$$(./scripts/find-python312.sh) || exit 1; \
	  if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$py"; $$py -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r layers/relay/requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

# The SAM CLI and checkov each pin a boto3 of their own: each gets its own venv.
$(TOOLS)/%/.stamp: requirements-%.txt
	@py=$$(./scripts/find-python312.sh) || exit 1; \
	  if [ ! -x $(TOOLS)/$*/bin/python ]; then $$py -m venv $(TOOLS)/$* || exit 1; fi
	$(TOOLS)/$*/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-$*.txt
	@touch $@

# The Serverless Devs CLI (npm, pinned with its integrity hash in tools/serverless-devs/package-lock.json), for
# `s preview` in make lint. Its own HOME, so that it neither reads nor writes the user's ~/.s.
$(TOOLS)/s/.stamp: tools/serverless-devs/package.json tools/serverless-devs/package-lock.json
	mkdir -p $(TOOLS)/s/home
	cp tools/serverless-devs/package.json tools/serverless-devs/package-lock.json $(TOOLS)/s/
	npm ci --prefix $(TOOLS)/s --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# The layer's wheels (this machine's platform), fetched once at install time, so that the built-artifact
# tests and `make fc-package` build offline (pip --no-index --find-links).
$(WHEELHOUSE)/.stamp: layers/relay/requirements.txt $(STAMP)
	$(PY) -m pip download --quiet --disable-pip-version-check -d $(WHEELHOUSE) --require-hashes -r layers/relay/requirements.txt
	$(PY) -m pip download --quiet --disable-pip-version-check -d $(WHEELHOUSE) setuptools==80.9.0 wheel==0.48.0
	@touch $@

demo: $(STAMP)
	$(PY) tools/demo.py

test: lint $(WHEELHOUSE)/.stamp
	$(PY) -m pytest

# Benchmarks: ratios against baselines measured in the same run; writes bench/results.md.
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH)

# Fault-injection soak: 2,000 tasks through the queue consumer with faults everywhere (200 in make test).
soak: $(STAMP)
	$(PY) tools/soak.py --tasks $${SOAK_TASKS:-2000}

# Mutation testing (mutmut) of the modules that carry the guarantees, nightly-style (not in make test): a
# first run is over an hour on 2 cores (docs/testing.md); later runs test again only what was not killed and
# the mutants of functions that changed.
mutate: $(STAMP)
	$(PY) tools/mutate.py $(if $(FRESH),--fresh) $(MUTATE)

# Hypothesis over every handler's events and GetAITask bodies: 10,000 examples per target (150 in make test);
# then schemathesis over `aitask-relay serve`'s /openapi.json on the emulator: 300 examples per operation (10 in make test).
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10000} $(PY) -m pytest tests/fuzz -q
	SCHEMATHESIS_EXAMPLES=$${SCHEMATHESIS_EXAMPLES:-300} $(PY) -m pytest tests/integration/test_serve_openapi.py -q

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

# checkov: the SAM template as CloudFormation, and its secrets scan over what is deployed or documented (both
# templates, the events, the code, README, the Makefile). checkov has no framework for ROS templates, and its
# yaml/json frameworks hold no built-in checks. tests/, bench/ and tools/ hold the local servers' throwaway
# credentials (guest:guest) on purpose.
#
# aliyun/s.yaml: `s preview` renders it offline with Serverless Devs' own parser (YAML, merge keys, ${vars}, ${env},
# with placeholder inputs); NODE_ENV=test is the CLI's switch that starts none of its background processes (the
# update check against the npm registry, usage reports). `s verify`, which would also check the props against the
# fc3 component's schema, downloads the component from the Serverless Devs registry at run time: not used
# (docs/deploy-fc.md#what-make-lint-checks).
lint: $(STAMP) $(TOOLS)/sam/.stamp $(TOOLS)/checkov/.stamp $(TOOLS)/s/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -r layers functions
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules
	$(SAM) validate --lint --template template.yaml
	$(CHECKOV) -f template.yaml --framework cloudformation --quiet --compact --skip-download
	$(CHECKOV) -d . --framework secrets --enable-secret-scan-all-files --quiet --compact --skip-download \
	  --skip-path '\.venv' --skip-path '\.wheelhouse' --skip-path '\.git/' --skip-path '_cache' \
	  --skip-path '\.hypothesis' --skip-path '\.aws-sam' --skip-path '\.mutate' --skip-path '^out/' --skip-path tests/ \
	  --skip-path bench/ --skip-path tools/
	@out=$$(cd aliyun && NODE_ENV=test HOME=$(CURDIR)/$(TOOLS)/s/home TemplateBucketName=lint-templates \
	  LayerVersion=1 LogProject=lint-logs $(CURDIR)/$(S_CLI) preview -t s.yaml -o json 2>&1) \
	  && echo "aliyun/s.yaml: rendered by Serverless Devs (s preview)" \
	  || { echo "$$out"; exit 1; }

# Recompile the layer's locked requirements (full closure, with hashes) from requirements.in.
lock: $(STAMP)
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
	  --no-emit-find-links --output-file layers/relay/requirements.txt layers/relay/requirements.in

# Known vulnerabilities in the pinned dependencies (needs the vulnerability service: PyPI's JSON API).
audit: $(STAMP)
	$(PY) tools/audit.py

# sam build runs pip for python3.12 without Docker when a python3.12 is first on PATH.
build: $(TOOLS)/sam/.stamp
	@py=$$(./scripts/find-python312.sh) || exit 1; \
	  PATH="$$(dirname $$py):$$PATH" $(SAM) build --template template.yaml --build-dir $(BUILD_DIR)

# Function Compute: out/aliyun/code.zip (index.py) and out/aliyun/layer.zip (python/...), for x86_64 FC.
fc-package: $(STAMP) $(WHEELHOUSE)/.stamp
	$(PY) tools/fc_package.py --out out/aliyun --wheelhouse $(WHEELHOUSE)

replay: $(STAMP)
	$(VENV)/bin/aitask-relay replay $(EVENT)

emulator: $(STAMP)
	$(VENV)/bin/aitask-relay emulator --port 8790

clean:
	rm -rf $(VENV) $(TOOLS) $(WHEELHOUSE) .aws-sam out .mutate
