"""The pinned toolchain really works: Lava imports, is patched, and runs a small network."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]

LAVA_SMOKE = r"""
import numpy as np
from lava.proc.io.source import RingBuffer as Source
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.dense.process import Dense
from lava.proc.lif.process import LIF
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
T = 10
data = np.zeros((3, T)); data[:, ::2] = 1          # every input fires on even steps
src = Source(data=data)
dense = Dense(weights=np.eye(2, 3) * 2.0)
lif = LIF(shape=(2,), du=1.0, dv=0.0, vth=1.5)
sink = Sink(shape=(2,), buffer=T)
src.s_out.connect(dense.s_in); dense.a_out.connect(lif.a_in); lif.s_out.connect(sink.a_in)
src.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
out = sink.data.get()
src.stop()
# Dense delivers one step late: the LIF fires on odd steps.
expected = np.zeros((2, T)); expected[:, 1::2] = 1
assert np.array_equal(out, expected), out
print("LAVA-OK")
"""


def test_lava_runs_source_dense_lif():
    r = subprocess.run([sys.executable, "-c", LAVA_SMOKE], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "LAVA-OK" in r.stdout, r.stderr[-2000:]


def test_lava_patch_is_applied_and_idempotent():
    r = subprocess.run([sys.executable, str(ROOT / "backends" / "lava_patch.py")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("already fine") == 2, r.stdout


def test_lava_dl_slayer_imports_on_this_torch():
    r = subprocess.run([sys.executable, "-c", "import lava.lib.dl.slayer, lava.lib.dl.netx; "
                        "import torch; print(torch.__version__)"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("2.13.0")


def test_pinned_numpy_is_1x():
    import numpy
    assert numpy.__version__.startswith("1.26.")


def test_pyproject_lists_every_package_and_admits_the_pins():
    import tomllib
    from packaging.requirements import Requirement
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(meta["tool"]["setuptools"]["packages"])
    found = {".".join(("mstdeploy",) + p.parent.relative_to(ROOT).parts)
             for p in ROOT.rglob("__init__.py") if not {".venv", "tests", "build"} & set(p.parts)}
    assert found == listed, (found ^ listed)
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0]
        if line.strip():
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    for dep in map(Requirement, meta["project"]["dependencies"]):
        assert dep.name.lower() in pins, dep.name
        assert dep.specifier.contains(pins[dep.name.lower()]), (dep, pins[dep.name.lower()])
