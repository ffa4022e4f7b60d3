# aitask-relay: `make demo` and `make test` are all a new user needs. Both create .venv when missing.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help demo test unit integration lint replay emulator clean

help:
	@echo "make demo      run the relay against the bundled ROS emulator, deliver to a local directory"
	@echo "make test      lint + the whole test suite (unit, integration, infra)"
	@echo "make replay EVENT=events/fetch_task/one-task.json   run one sample event through its handler"
	@echo "make emulator  run the ROS emulator standalone on 127.0.0.1:8790 (Ctrl-C to stop)"

$(STAMP): pyproject.toml requirements-dev.txt layers/relay/requirements.txt
	@py=$$(./scripts/find-python312.sh) || exit 1; \
	  if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$py"; $$py -m venv $(VENV) || exit 1; fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r layers/relay/requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP)
	$(PY) tools/demo.py

test: lint
	$(PY) -m pytest

unit: $(STAMP)
	$(PY) -m pytest tests/unit

integration: $(STAMP)
	$(PY) -m pytest tests/integration

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml

replay: $(STAMP)
	$(PY) tools/replay.py $(EVENT)

emulator: $(STAMP)
	$(PY) -m ros_emulator --port 8790 --scenario emulator/scenarios/demo.json --access-key demo-key-id:demo-key-secret

clean:
	rm -rf $(VENV) .aws-sam out
