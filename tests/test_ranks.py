"""`mst simulate` and `mst energy` under torchrun: the images are shared out over the ranks, the
figures gathered, and the JSON is that of one process plus `ranks` (gloo, 2 CPU processes)."""
import json
import subprocess
import sys

from conftest import calibrated, run_mst
from mstdeploy.export.lower import to_nir
from mstdeploy.ir.io import write_graph

# Figures that do not depend on how the work was split (times and the rank count do).
SPLIT_FREE = ("images", "steps", "accuracy", "per_inference", "per_node", "saturation")


def torchrun(*args):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mstdeploy.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_simulate_and_energy_on_two_ranks_equal_one_process(tmp_path):
    g = tmp_path / "g.nir"
    write_graph(to_nir(calibrated("mst-spiking", mask=0.5).float(), seed=2), g)
    # 45 images in batches of 10: rank 0 runs images 0-19, rank 1 images 20-44 (gates keyed by them)
    common = ("-n", 45, "-T", 6, "--batch-size", 10, "--fixed-point", "--no-progress")
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    r1 = run_mst("simulate", g, *common, "--json", one)
    assert r1.returncode == 0, r1.stderr
    r2 = torchrun("simulate", g, *common, "--json", two)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert r2.stdout.count("accuracy") == 1 and "2 ranks" in r2.stdout    # rank 0 alone prints
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert (a["ranks"], b["ranks"]) == (1, 2)
    for k in SPLIT_FREE:
        assert a[k] == b[k], k
    assert a["per_inference"]["gated_events"] > 0

    e1, e2 = tmp_path / "e1", tmp_path / "e2"
    common = ("-n", 25, "-T", 4, "--no-progress", "--sweep", "0,0.5")
    assert run_mst("energy", g, *common, "--out", e1).returncode == 0
    r = torchrun("energy", g, *common, "--out", e2)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (json.loads((d / "energy.json").read_text()) for d in (e1, e2))
    assert (a.pop("ranks"), b.pop("ranks")) == (1, 2)
    assert a == b
    assert sorted(p.name for p in e1.iterdir()) == sorted(p.name for p in e2.iterdir())
