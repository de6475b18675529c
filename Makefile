# Two entry points for a newcomer; each sets itself up in .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= demo-out

.PHONY: demo test

$(PY):
	python3 -m venv $(VENV)

demo: $(PY)
	$(PY) -m pip install --quiet -e .
	$(VENV)/bin/vidvpr demo make $(DEMO)
	$(VENV)/bin/vidvpr slice $(DEMO)/*/*.mp4 --out $(DEMO)/views
	$(VENV)/bin/vidvpr manifest $(DEMO)/demo-dataset.toml

test: $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pytest -q
