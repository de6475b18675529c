# Two entry points for a newcomer; each sets itself up in .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= demo-out
# torch is installed first, pinned: the CPU build that this project's machines carry installs in
# seconds, where an unpinned "torch" may pull a multi-GB CUDA build. Elsewhere: TORCH=torch.
TORCH ?= torch==2.13.0

.PHONY: demo test install

$(PY):
	python3 -m venv $(VENV)

install: $(PY)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test]"

demo: install
	$(VENV)/bin/vidvpr demo run $(DEMO)

test: install
	$(PY) -m pytest -q
