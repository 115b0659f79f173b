# Conficker P2P detection pack. `make rules` renders the ruleset; `make test` runs every test.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
SURICATA8_ROOT ?= .cache/suricata8
PYTEST_ARGS ?=

.PHONY: rules dist pcaps test lint engines suricata7 suricata8 snort3 clean

# The lock first: it bumps the rev of every rule whose text changed.
rules: $(VENV)/.installed
	$(BIN)/python -m generator.targets.revs
	$(BIN)/cfp2p render

# Release: dist/<pack>-<VERSION>.tar.gz, its .md5 and a suricata-update index.yaml whose
# url points at DIST_URL (default: `python3 -m http.server -d dist 8000` on this host).
DIST_URL ?= http://127.0.0.1:8000
dist: $(VENV)/.installed
	$(BIN)/python -m generator.targets.release.dist --out dist --base-url $(DIST_URL)

pcaps: $(VENV)/.installed
	$(BIN)/cfp2p pcaps --out pcaps

test: $(VENV)/.installed engines valgrind
	$(BIN)/ruff check generator tests bench
	CFP2P_SURICATA8_ROOT=$(abspath $(SURICATA8_ROOT)) $(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check generator tests bench

engines: suricata7 suricata8 snort3 netns-tools gnu-time

# GNU time: the peak RSS of each engine run that bench measures (bench/timing.py).
.PHONY: gnu-time
gnu-time:
	@test -x /usr/bin/time || { apt-get install -y -q time || { apt-get update -q && apt-get install -y -q time; }; }

suricata7:
	@sh scripts/install-suricata7.sh

suricata8:
	@sh scripts/install-suricata8.sh $(SURICATA8_ROOT)

# Snort 3 is not packaged: SNORT3 names a binary (default ../shared/snort3/bin/snort);
# this installs its runtime libraries.
snort3:
	@sh scripts/install-snort3.sh

.PHONY: netns-tools
netns-tools:
	@sh scripts/install-netns-tools.sh

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# bench counts instructions under valgrind (callgrind) on the host and in the Suricata 8
# chroot; cc builds its fixed-seed preload (bench/fixedseed.c). Idempotent.
.PHONY: valgrind
valgrind: suricata8
	@command -v valgrind >/dev/null || apt-get install -y -q valgrind || { apt-get update -q && apt-get install -y -q valgrind; }
	@command -v cc >/dev/null || apt-get install -y -q gcc libc6-dev || { apt-get update -q && apt-get install -y -q gcc libc6-dev; }
	@test -x $(SURICATA8_ROOT)/usr/bin/valgrind || { chroot $(SURICATA8_ROOT) apt-get update -q && \
	  chroot $(SURICATA8_ROOT) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends valgrind && \
	  chroot $(SURICATA8_ROOT) apt-get clean; }

# What the pack costs Suricata: about 12 min, writes bench/RESULTS.md.
# BENCH_ARGS=--small: a check in seconds (report in .cache/bench/RESULTS-small.md).
BENCH_ARGS ?=
.PHONY: bench
bench: $(VENV)/.installed engines valgrind
	$(BIN)/ruff check bench
	CFP2P_SURICATA8_ROOT=$(abspath $(SURICATA8_ROOT)) $(BIN)/python -m bench $(BENCH_ARGS)
