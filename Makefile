# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PEERS  := $(VENV)/.peers
SANAFE := $(VENV)/sanafe

.PHONY: install demo test peers sanafe data clean

install: $(STAMP)

# Idempotent: re-runs only when the pins or the Lava patch change.
$(STAMP): requirements.txt pyproject.toml backends/lava_patch.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements.txt
	$(PIP) install -q --disable-pip-version-check --no-deps --ignore-requires-python \
		lava-nc==0.10.0 lava-dl==0.6.0
	$(PY) backends/lava_patch.py
	$(PIP) install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mst demo

test: $(STAMP) $(PEERS) $(SANAFE)/.installed
	$(PY) -m pytest

# The peer frameworks the interop tests and bench/peers.py run, beside our pins (which constrain
# them); for the tests only: nothing of mstdeploy imports them.
peers: $(PEERS)

$(PEERS): $(STAMP) requirements-peers.txt
	$(PIP) install -q --disable-pip-version-check -r requirements-peers.txt -c requirements.txt
	touch $(PEERS)

# SANA-FE (GPL-3.0), the chip simulator that cross-checks `mst plan` (loihi/sanafe.py), in a venv of
# its own: mstdeploy writes its files and runs it as a separate process, never imports it.
sanafe: $(SANAFE)/.installed

$(SANAFE)/.installed:
	test -x $(SANAFE)/bin/python || $(PYTHON) -m venv $(SANAFE)
	$(SANAFE)/bin/python -m pip install -q --disable-pip-version-check sanafe==2.2.9 numpy==2.4.6 pyyaml==6.0.4
	touch $(SANAFE)/.installed

# Fashion-MNIST's IDX files from Debian (as root): --dataset fashion-mnist reads them from where the
# package puts them, /usr/share/datasets/fashion-mnist.
data:
	test -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz || \
		(apt-get update && apt-get install -y dataset-fashion-mnist)

clean:
	rm -rf $(VENV) $(SANAFE) runs
