"""Shared fixtures: small models and data files made on the fly (no downloads)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch


def run_mst(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    """Run the `mst` CLI in a fresh interpreter, as a user would."""
    return subprocess.run([sys.executable, "-m", "mstdeploy.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
