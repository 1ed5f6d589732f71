# Set-up is part of every target: a fresh clone needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CNN    := $(VENV)/bin/cnncalc
# torch 2.13.0 is pinned: on this project's machines a CPU build of it lies on disk,
# while an unpinned torch pulls a CUDA build of several GB.
TORCH  := torch==2.13.0

.PHONY: demo test test-zoo bench fuzz mutate install clean grammar readme golden test-browser screenshots

# what the demo and the README's commands need; the test extras (Keras, JAX, pytest, ...)
# come with the first 'make test'
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)" -e ".[torch,pictures,serve,onnx,highlight]"
	# byte-compile as a wheel install does (this machine sets PYTHONDONTWRITEBYTECODE)
	$(PY) -m compileall -q cnncalc >/dev/null
	touch $@

$(VENV)/.tested: $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH)" -e ".[torch,pictures,serve,onnx,highlight,test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(CNN) summary specs/vgg16.cnn
	$(CNN) check specs/lenet5.cnn

test: $(VENV)/.tested
	$(PY) -m pytest

# every zoo spec's training step measured (make test runs a sample): a few minutes
test-zoo: $(VENV)/.tested
	CNNCALC_ZOO=1 $(PY) -m pytest tests/test_training_step.py tests/test_import_libraries.py -q -p no:cacheprovider

fuzz: $(VENV)/.tested
	CNNCALC_FUZZ_EXAMPLES=$${CNNCALC_FUZZ_EXAMPLES:-100000} $(PY) -m pytest tests/test_fuzz.py -q -p no:cacheprovider
	CNNCALC_DESIGN_EXAMPLES=$${CNNCALC_DESIGN_EXAMPLES:-2000} $(PY) -m pytest tests/test_good_designs.py -q -p no:cacheprovider
	CNNCALC_KERAS_EXAMPLES=$${CNNCALC_KERAS_EXAMPLES:-1000} $(PY) -m pytest tests/test_keras_values.py -k random -q -p no:cacheprovider
	CNNCALC_IMPORT_EXAMPLES=$${CNNCALC_IMPORT_EXAMPLES:-2000} $(PY) -m pytest tests/test_fuzz_importers.py -q -p no:cacheprovider

# mutation testing (MUTATION.md): slow, kept out of `make test`; re-runs reuse mutants/
mutate: $(VENV)/.tested
	$(PY) -m pip install -q --disable-pip-version-check "mutmut==3.8.1"
	$(VENV)/bin/mutmut run --max-children $$(nproc)
	# mutants of code that runs at import never take effect in mutmut's forked runs
	$(PY) tools/mutants_at_import.py --survivors
	$(VENV)/bin/mutmut results --all true > mutants/results.txt
	$(PY) tools/mutation_score.py mutants/results.txt

bench: install
	$(PY) -m pip install -q --disable-pip-version-check -e ".[torch,pictures,test,bench]"
	$(PY) bench/bench.py

# the parser is generated from the grammar (a test checks that they match)
grammar: $(VENV)/.tested
	$(PY) tools/make_grammar.py

# the README's layer table comes from the kinds (a test checks it)
readme: $(VENV)/.tested
	$(PY) tools/update_readme.py

# rewrite the golden files from the current output, then show what changed: review it
golden: $(VENV)/.tested
	$(PY) -m pytest tests/test_cli.py tests/test_import_golden.py -k golden --update-golden -q
	git --no-pager diff --stat -- tests/golden

# the playground in Debian's chromium (apt install chromium), driven by Playwright
test-browser: $(VENV)/.tested
	$(PY) -m pip install -q --disable-pip-version-check playwright
	$(PY) -m pytest tests/test_browser.py -rs

screenshots: $(VENV)/.tested
	$(PY) -m pip install -q --disable-pip-version-check playwright
	$(PY) tools/screenshots.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
