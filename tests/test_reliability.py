"""Reliability and safety (issue 13): one test per numbered case, named after it. Bad input is one
line and exit 2 before any work; no user file is destroyed; nothing of ours is left behind."""
import os
import pathlib
import pickle
import signal
import stat
import subprocess
import sys
import time

import nir
import numpy as np
import pytest
import torch

from conftest import vgg_files, one_line_error, one_line_here, run_mst
from mstdeploy.ir import nodes as X
from mstdeploy.ir.io import write_graph


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return vgg_files(tmp_path_factory.mktemp("rel"))


def _procs() -> dict:
    """pid -> (parent pid, process group, command line), from /proc."""
    out = {}
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        f = st[st.rindex(")") + 2:].split()
        out[int(d.name)] = (int(f[1]), int(f[2]), cmd)
    return out


def _ours(folder: pathlib.Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".mst" in p.name and p.name.endswith(".tmp")]


def test_1_writes_respect_the_target(files, tmp_path):
    _, g, ck = files
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    line = one_line_error(run_mst("export", ck, "-o", fifo))
    assert "FIFO" in line and stat.S_ISFIFO(fifo.stat().st_mode)          # refused, still a FIFO
    assert "folder" in one_line_error(run_mst("export", ck, "-o", tmp_path))
    # a symlink keeps pointing at its target, which is replaced
    target, link = tmp_path / "real.nir", tmp_path / "link.nir"
    target.write_text("old")
    link.symlink_to(target)
    assert run_mst("export", ck, "-o", link).returncode == 0
    assert link.is_symlink() and os.readlink(link) == str(target) and target.read_bytes()[:4] == b"\x89HDF"
    # an existing file keeps its mode; a new one gets the umask's
    target.chmod(0o640)
    assert run_mst("export", ck, "-o", link).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    r = subprocess.run(f"umask 027 && {sys.executable} -m mstdeploy.cli export {ck} -o {tmp_path / 'new.nir'}",
                       shell=True, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and stat.S_IMODE((tmp_path / "new.nir").stat().st_mode) == 0o640
    assert not _ours(tmp_path)


def test_2_an_output_equal_to_an_input_is_refused(files, tmp_path):
    _, g0, ck0 = files
    g, ck = tmp_path / "g.nir", tmp_path / "c.pt"
    g.write_bytes(g0.read_bytes())
    ck.write_bytes(ck0.read_bytes())
    before = {p: p.read_bytes() for p in (g, ck)}
    for args in (("export", ck, "-o", ck), ("simulate", g, "-n", "2", "--json", g),
                 ("eval", ck, "--json", ck), ("resources", g, "--json", g),
                 ("simulate", g, "-n", "2", "--record", "all", "--spikes-out", g),
                 ("lava", g, "-n", "1", "--json", g), ("parity", g, "-n", "1", "--json", g),
                 ("simulate", g, "-n", "2", "--json", tmp_path / "a.json", "--record", "all",
                  "--spikes-out", tmp_path / "a.json")):
        line = one_line_error(run_mst(*args))
        assert "input" in line or "same file" in line, line
    assert all(p.read_bytes() == b for p, b in before.items())


def test_3_a_killed_lava_run_leaves_nothing_behind(files, tmp_path):
    _, g, _ = files
    for sig in (signal.SIGKILL, signal.SIGTERM):
        p = subprocess.Popen([sys.executable, "-m", "mstdeploy.cli", "lava", str(g), "-T", "512", "--timeout", "300",
                              "--no-progress", "--json", str(tmp_path / "x.json")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        worker, t0 = None, time.time()
        while worker is None and time.time() - t0 < 120:
            ps = _procs()
            found = [pid for pid, (pp, _, cmd) in ps.items() if pp == p.pid and "lava_nc.worker" in cmd]
            if found and sum(1 for _, pg, _ in ps.values() if pg == found[0]) > 5:     # Lava has started
                worker = found[0]
            time.sleep(0.3)
        assert worker is not None, p.communicate(timeout=60)
        job = pathlib.Path(_procs()[worker][2].split()[-2])
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        if sig == signal.SIGTERM:
            assert p.returncode == 143 and err.strip().splitlines()[-1] == "error: terminated"
        t1 = time.time()
        while time.time() - t1 < 20:
            left = [pid for pid, (_, pg, _) in _procs().items() if pg == worker]
            shm = list(pathlib.Path("/dev/shm").glob(f"mstlava{worker}_*"))
            if not left and not shm and not job.parent.exists():
                break
            time.sleep(0.3)
        assert not left and not shm and not job.parent.exists(), (sig, left, shm, job.parent)


def test_4_a_crafted_cifar_batch_runs_no_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for f in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        with open(tmp_path / f, "wb") as fh:
            pickle.dump({b"data": Evil(), b"labels": [0]}, fh)
    line = one_line_error(run_mst("train", "--dataset", "cifar10", "--data", tmp_path, "--epochs", "1",
                                  "--out", tmp_path / "c.pt"))
    assert "not a CIFAR batch" in line and "system" in line and not marker.exists()


def _chain(names_and_nodes, edges) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=dict(names_and_nodes), edges=edges, type_check=False)


def test_5_nan_and_inf_parameters_are_refused(files, tmp_path):
    _, g, ck = files
    graph = nir.read(g)
    bad = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Conv2d))
    graph.nodes[bad].weight[0, 0, 0, 0] = np.nan
    write_graph(graph, tmp_path / "nan.nir")
    for extra in ((), ("--fixed-point",)):
        line = one_line_error(run_mst("simulate", tmp_path / "nan.nir", "-n", "2", *extra))
        assert "NaN" in line and bad in line
    graph.nodes[bad].weight[0, 0, 0, 0] = 1.0
    th = next(k for k, n in graph.nodes.items() if isinstance(n, X.ResetSubIF))
    graph.nodes[th].threshold[...] = np.inf
    write_graph(graph, tmp_path / "inf.nir")
    assert "infinite" in one_line_error(run_mst("parity", tmp_path / "inf.nir", "-n", "1", "--fixed-point"))
    c = torch.load(ck, weights_only=False)
    next(iter(c["state_dict"].values()))[...] = float("inf")
    torch.save(c, tmp_path / "inf.pt")
    for args in (("export", tmp_path / "inf.pt", "-o", tmp_path / "x.nir"), ("eval", tmp_path / "inf.pt")):
        assert "NaN or infinite" in one_line_error(run_mst(*args))
    assert not (tmp_path / "x.nir").exists()


def test_6_unusable_outputs_fail_before_the_work(files, tmp_path):
    _, g, ck = files
    (tmp_path / "plain").write_text("a file, not a folder")
    t0 = time.time()
    for args in (("train", "--out", tmp_path), ("train", "--out", ""), ("train", "--out", tmp_path / "plain" / "c.pt"),
                 ("export", ck, "-o", ""), ("simulate", g, "--json", tmp_path),
                 ("energy", g, "-n", "2", "--out", tmp_path / "plain"), ("demo", "--out", tmp_path / "plain")):
        one_line_error(run_mst(*args))
    assert time.time() - t0 < 60                # nothing trained or simulated first
    assert (tmp_path / "plain").read_text() == "a file, not a folder"


def test_7_zero_images_is_an_error(files):
    _, g, _ = files
    for cmd in ("simulate", "lava", "parity", "energy"):
        assert "-n/--images: 0 is not >= 1" in one_line_error(run_mst(cmd, g, "-n", "0"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_8_device_cuda_without_cuda_is_an_error(tmp_path):
    for args in (("train", "--device", "cuda", "--epochs", "1", "--out", tmp_path / "c.pt"),):
        assert "no CUDA device" in one_line_error(run_mst(*args))
    assert not (tmp_path / "c.pt").exists()


def test_9_an_energy_report_appears_whole_or_not_at_all(files, tmp_path):
    from mstdeploy.compare.energy_report import write_report
    _, g, _ = files
    out = tmp_path / "report"
    assert run_mst("energy", g, "-T", "4", "-n", "4", "--out", out).returncode == 0
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    report = __import__("json").loads(old["energy.json"])
    report["runs"][0]["accuracy"] = 0.123                  # a different report ...
    with pytest.raises(Exception):
        write_report(report, out, spikes=object())         # ... whose raster plot fails midway
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old and not _ours(out)
    (out / "sweep.png").write_bytes(b"from an older sweep")
    write_report(report, out, spikes=None)                 # a report without a sweep removes the old plot
    assert not (out / "sweep.png").exists() and b"0.123" in (out / "energy.json").read_bytes()


def test_10_temporary_files_are_removed(files, tmp_path):
    _, _, ck = files
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".g.nir.mst{int(dead.stdout)}.abc123.tmp"
    stale.write_text("left by a killed run")
    assert run_mst("export", ck, "-o", tmp_path / "g.nir").returncode == 0
    assert not stale.exists() and not _ours(tmp_path)
    # SIGTERM during training: exit 143, one line, no checkpoint and no temporary left
    p = subprocess.Popen([sys.executable, "-m", "mstdeploy.cli", "train", "--epochs", "50", "--no-progress",
                          "--out", str(tmp_path / "c.pt")], stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and err.strip().splitlines()[-1] == "error: terminated", err
    assert not (tmp_path / "c.pt").exists() and not _ours(tmp_path)


def test_11_bad_checkpoints_flags_and_sizes_are_one_line(files, tmp_path, capsys):
    _, g, ck = files
    c = torch.load(ck, weights_only=False)
    for name, change in (("noconfig", lambda d: d.pop("config")), ("strdim", lambda d: d["config"].update(hidden="x")),
                         ("negdim", lambda d: d["config"].update(hidden=-3)),
                         ("huge", lambda d: d["config"].update(hidden=1 << 20, img_size=1 << 12))):
        d = torch.load(ck, weights_only=False)
        change(d)
        torch.save(d, tmp_path / f"{name}.pt")
        one_line_here(capsys, "export", tmp_path / f"{name}.pt", "-o", tmp_path / "x.nir")
    assert "GiB" in one_line_here(capsys, "eval", tmp_path / "huge.pt")
    del c
    for args in (("train", "--batch-size", "0"), ("train", "--lr", "nan"), ("train", "--seed", "1" * 23),
                 ("simulate", g, "-T", "100000", "--record", "all", "--spikes-out", tmp_path / "s.h5")):
        one_line_here(capsys, *args)      # (a long -T alone is fine: time runs in chunks)
    # a 64 KB file that declares 65536 x 65536 neurons
    big = (65536, 65536)
    bomb = _chain([("in", nir.Input(input_type={"input": np.array(big)})),
                   ("if", X.ResetSubIF(shape=big, threshold=1.0, v_init=0.5, bias=0.0)),
                   ("out", nir.Output(output_type={"output": np.array(big)}))], [("in", "if"), ("if", "out")])
    write_graph(bomb, tmp_path / "bomb.nir")
    assert (tmp_path / "bomb.nir").stat().st_size < 100_000
    assert "GiB" in one_line_here(capsys, "resources", tmp_path / "bomb.nir")
    # a 3000-node chain runs (no recursion limit)
    shape = (1, 8, 8)
    chain = [("in", nir.Input(input_type={"input": np.array(shape)}))]
    chain += [(f"s{i}", nir.Scale(scale=np.ones(shape, np.float32))) for i in range(3000)]
    chain += [("flat", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)),
              ("lin", nir.Linear(weight=np.ones((10, 64), np.float32))),
              ("out", nir.Output(output_type={"output": np.array([10])}))]
    write_graph(_chain(chain, [(a[0], b[0]) for a, b in zip(chain, chain[1:])]), tmp_path / "chain.nir")
    r = run_mst("simulate", tmp_path / "chain.nir", "-n", "2", "-T", "2", "--json", tmp_path / "c.json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]


def test_12_inspect_escapes_control_characters(tmp_path):
    name = "evil\x1b[2J\x07name"
    shape = (1, 8, 8)
    g = _chain([("in", nir.Input(input_type={"input": np.array(shape)})),
                (name, nir.Scale(scale=np.ones(shape, np.float32))),
                ("out", nir.Output(output_type={"output": np.array(shape)}))], [("in", name), (name, "out")])
    write_graph(g, tmp_path / "g.nir")
    r = run_mst("inspect", tmp_path / "g.nir")
    assert r.returncode == 0 and "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "evil\\x1b[2J\\x07name" in r.stdout


def test_13_a_malicious_checkpoint_is_named_as_such(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "mstdeploy-checkpoint", "version": 1, "x": Evil()}, tmp_path / "evil.pt")
    line = one_line_error(run_mst("export", tmp_path / "evil.pt", "-o", tmp_path / "x.nir"))
    assert "not a safe checkpoint" in line and "system" in line and not marker.exists()


def test_3_what_a_run_killed_with_its_worker_left_is_removed_by_the_next_run():
    from mstdeploy.backends.lava_nc.run import remove_stale_runs
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout)
    folder = pathlib.Path("/tmp") / f"mst-lava-{dead}-stale"
    folder.mkdir()
    (folder / "job.json").write_text("{}")
    seg = pathlib.Path("/dev/shm") / f"mstlava{dead}_0123456789ab"
    seg.write_bytes(b"\0" * 16)
    mine = pathlib.Path("/tmp") / f"mst-lava-{os.getpid()}-alive"
    mine.mkdir()
    try:
        remove_stale_runs()
        assert not folder.exists() and not seg.exists() and mine.exists()
    finally:
        mine.rmdir()
        seg.unlink(missing_ok=True)


def test_5b_time_constants_in_seconds_are_refused_not_misread(tmp_path):
    # snnTorch's export of Leaky(beta=0.9): tau = 1e-4 / (1 - beta) seconds; read as steps it
    # would decay 1000 times the membrane per step and run silently wrong
    f = np.float32
    g = _chain([("in", nir.Input(input_type={"input": np.array([4])})),
                ("fc", nir.Affine(weight=np.eye(4, dtype=f), bias=np.zeros(4, f))),
                ("lif", nir.LIF(tau=np.full(4, 1e-3, f), r=np.full(4, 10.0, f), v_leak=np.zeros(4, f),
                                v_threshold=np.ones(4, f))),
                ("out", nir.Output(output_type={"output": np.array([4])}))],
               [("in", "fc"), ("fc", "lif"), ("lif", "out")])
    write_graph(g, tmp_path / "seconds.nir")
    line = one_line_error(run_mst("inspect", tmp_path / "seconds.nir"))
    assert "tau = 0.001" in line and "lif" in line and "seconds" in line


def test_14_a_huge_T_and_labels_beyond_the_outputs_are_one_line(files, tmp_path):
    _, g, _ = files
    line = one_line_error(run_mst("simulate", g, "-T", "999999999999", "-n", "2", "--no-progress"))
    assert "999999999999 steps" in line and "lower -T" in line
    np.save(tmp_path / "x.npy", np.zeros((3, 1, 8, 8), np.float32))
    np.save(tmp_path / "y.npy", np.array([1, 99, 2]))
    line = one_line_error(run_mst("simulate", g, "--inputs", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
                                  "--no-progress", "--json", tmp_path / "s.json"))
    assert "labels must lie in 0..9" in line and not (tmp_path / "s.json").exists()
