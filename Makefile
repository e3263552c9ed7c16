# Two commands on a fresh machine: `make run` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501
PYTEST_ARGS ?=
# torch's OpenMP threads sleep between parallel regions instead of spinning against the server, the browser
# and the job threads (3x faster "Run everything" on a shared machine; see core/__init__.py)
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install run test bench science clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first: on a CPU machine this takes the CPU wheel, never a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# the test extra, and the distributed one so the suite runs the sweep's Dask backend on a local cluster
	$(PY) -m pip install -q -e '.[test,distributed]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@echo "Residue dashboard: http://localhost:$(PORT)"
	$(PY) -m streamlit run dashboard/app.py --server.address 127.0.0.1 --server.port $(PORT)

# What CI runs (.ci/run). Browser tests need Debian's chromium: installed here when root with apt, else skipped,
# and the run's last line names every skipped suite with the command that enables it.
test: $(STAMP)
	tools/ensure_browser.sh
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'  # loss-landscapes, the peer bench/landscape.py times against
	$(PY) bench/run.py

# The science report (reports/science.md): 5 seeds x 3 scenarios, about 15-25 minutes on 2 cores with an empty
# model cache; `bench/science.py --quick` for a few-minute check.
science: $(STAMP)
	$(PY) bench/science.py --workers 2

clean:
	rm -rf $(VENV) .residue-cache .pytest_cache
