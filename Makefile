# The commands a user and CI type. `make run` and `make test` set up everything they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit bench debs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# Debian packages the tests use as real peers (haproxy also creates the
# `haproxy` user that the seed configuration drops privileges to; keepalived is
# the reference VRRP peer of the netns tests, which use iproute2's `ip` (psmisc
# has the `killall` the seed keepalived.conf tracks; nftables' `nft` makes poise vrrp's and
# Keepalived's no_accept rules); hatop,
# run under tmux, is a real client of the runtime API; chromium and its driver
# load the stats page in a real headless browser; redis-server, mariadb-server and
# postgresql are the real servers of the protocol health checks, openssl s_server the
# TLS server of ssl-hello-chk; zsh, groff and man-db check the shell completions and the
# man page as a user's shell and `man` read them; goaccess and lnav read poise's logs as
# HAProxy's users' analysers do).
debs:
	scripts/ensure-debs haproxy keepalived iproute2 hatop tmux chromium chromium-driver psmisc zsh groff-base man-db goaccess lnav \
		nftables redis-server mariadb-server postgresql openssl

run: $(STAMP)
	$(BIN)/poise demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

test: $(STAMP) debs lint
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# valgrind: bench/instructions.py counts poise's instructions per request under callgrind.
bench: $(STAMP)
	scripts/ensure-debs haproxy nginx wrk valgrind
	$(BIN)/python bench/run.py --repeat 3

clean:
	rm -rf $(VENV) build src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
