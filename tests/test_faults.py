"""Faults of the machine (issue 24), as safe as bad input: a write that fails (full disk, quota,
I/O error, closed pipe) or an allocation that fails (a memory cap) is one line and exit 2; the
old targets stay byte for byte; no temporary file is left; a command's outputs appear all or
none. Faults are injected where every byte is written (atomic._write), and for real where the
machine allows: a 200 KB tmpfs (root) and an address-space limit in a child process."""
import errno
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys

import pytest

from conftest import vgg_files, mst_here, one_line_error, run_mst
from mstdeploy import atomic, machine
from mstdeploy.errors import UserError
from mstdeploy.faults import allocation_failure, write_failure
from mstdeploy.ir.io import write_graph
from mstdeploy.models import checkpoint

OLD = b"the user's old file\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return vgg_files(tmp_path_factory.mktemp("faults"))


def _temps(folder: pathlib.Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".mst" in p.name and p.name.endswith(".tmp")]


def _olds(folder: pathlib.Path, *names) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        (folder / n).write_bytes(OLD)
    return {n: folder / n for n in names}


def _unchanged(paths: dict) -> None:
    for n, p in paths.items():
        assert p.read_bytes() == OLD, n


def _failing(monkeypatch, room: int, code: int = errno.ENOSPC):
    """Writes fail with `code` once `room` bytes (over all files) have gone out."""
    left = [room]

    def write(fd, data):
        with os.fdopen(fd, "wb") as f:
            n = min(len(data), left[0])
            f.write(bytes(memoryview(data)[:n]))
            left[0] -= n
            if n < len(data):
                raise OSError(code, os.strerror(code))
    monkeypatch.setattr(atomic, "_write", write)


@pytest.mark.parametrize("code,words", [(errno.ENOSPC, "no space left"), (errno.EDQUOT, "disk quota exceeded"),
                                        (errno.EIO, "input/output error"), (errno.EPIPE, "the reader went away")])
def test_every_writer_fails_cleanly(files, tmp_path, monkeypatch, code, words):
    """Text, NIR graphs, checkpoints and plots: one UserError naming the file and the cause."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mstdeploy.compare.plots import save_png
    from mstdeploy.ir.io import read_graph
    _, g, ck = files
    olds = _olds(tmp_path, "r.json", "g.nir", "c.pt", "p.png")
    model, _ = checkpoint.load(ck)
    writers = {"r.json": lambda p: atomic.write_text(p, "{}" * 1000),
               "g.nir": lambda p: write_graph(read_graph(g), p),
               "c.pt": lambda p: checkpoint.save(p, model),
               "p.png": lambda p: save_png(plt.figure(), p)}
    _failing(monkeypatch, 100, code)
    for name, write in writers.items():
        with pytest.raises(UserError) as e:
            write(olds[name])
        line = str(e.value)
        assert "\n" not in line and words in line and str(olds[name]) in line, line
    _unchanged(olds)
    assert not _temps(tmp_path)


def test_a_commands_outputs_appear_all_or_none(files, tmp_path, monkeypatch, capsys):
    """simulate's JSON and spike recording: the second failing leaves the first old too; the
    energy report's folder as it was; a new folder for outputs that never came is removed."""
    _, g, ck = files
    olds = _olds(tmp_path, "s.json", "s.h5", "e/energy.json")
    _failing(monkeypatch, 2000)                       # the JSON fits, the recording does not
    code, _, err = mst_here(capsys, "simulate", g, "-n", 4, "-T", 4, "--no-progress", "--json", olds["s.json"],
                            "--record", "all", "--spikes-out", olds["s.h5"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "no space left" in err, err
    code, _, err = mst_here(capsys, "energy", g, "-n", 4, "-T", 4, "--no-progress", "--out", tmp_path / "e")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "stage" not in err, err
    code, _, err = mst_here(capsys, "energy", g, "-n", 4, "-T", 4, "--no-progress", "--out", tmp_path / "new")
    assert code == 2 and not (tmp_path / "new").exists()
    code, _, err = mst_here(capsys, "export", ck, "-o", tmp_path / "g.nir")
    assert code == 2 and "g.nir" in err and not (tmp_path / "g.nir").exists()
    _unchanged(olds)
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["energy.json"]
    assert not _temps(tmp_path)


def test_library_messages_are_read_back():
    """torch and h5py wrap the OS's error in their own text; the cause is read back from it."""
    torch_msg = RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter failed writing file "
                             "data/0: file write failed")
    h5_msg = OSError("Can't write data (file write failed: time = Fri Dec  4, filename = 'g.nir', file descriptor "
                     "= 3, errno = 28, error message = 'No space left on device', buf = 0x1, total write size = 9)")
    assert "cannot write" in str(write_failure(torch_msg, "/x/c.pt"))
    assert "no space left on /x" in str(write_failure(h5_msg, "/x/g.nir"))
    assert write_failure(ValueError("no"), "/x") is None
    assert write_failure(RuntimeError("shape mismatch"), "/x") is None
    oom = RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                       "you tried to allocate 14417920 bytes. Error code 12 (Cannot allocate memory)")
    assert "an allocation of 14.4 MB failed" in str(allocation_failure(oom))
    assert "out of memory" in str(allocation_failure(MemoryError()))
    assert allocation_failure(RuntimeError("shape mismatch")) is None


def test_an_allocation_failure_is_one_line(files, monkeypatch, capsys):
    from mstdeploy.simulate import engine
    _, g, _ = files

    def run(*a, **k):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 14417920 bytes. Error code 12 (Cannot allocate memory)")
    monkeypatch.setattr(engine.Simulator, "run", run)
    code, _, err = mst_here(capsys, "simulate", g, "-n", 2, "-T", 2, "--no-progress", "--json", "-")
    assert code == 2 and err.strip().splitlines() == [err.strip()] and "out of memory" in err and "lower -n" in err
    import mstdeploy                                  # from Python: the same line, as a UserError
    with pytest.raises(UserError, match="out of memory: an allocation of 14.4 MB failed"):
        mstdeploy.simulate(g, "digits", 2, n=2)


def _cap(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_memory_limits_as_the_process_sees_them():
    """available_memory takes the address-space limit (prlimit --as, ulimit -v) into account."""
    code = "from mstdeploy import machine; print(machine.available_memory())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=_cap(2_000_000_000))
    assert r.returncode == 0, r.stderr
    assert 0 < int(r.stdout) < 2_000_000_000
    assert machine.available_memory() > 0


def test_under_a_memory_cap_a_run_fits_or_says_so(files, tmp_path):
    """Under a 1.5 GB address-space cap: the run's chunks are sized to it, or it is one line."""
    _, g, _ = files
    out = tmp_path / "s.json"
    r = run_mst("simulate", g, "-n", 64, "-T", 16, "--no-progress", "--json", out, preexec_fn=_cap(1_500_000_000))
    if r.returncode != 0:
        one_line_error(r)
    else:
        assert json.loads(out.read_text())["images"] == 64


def _can_mount() -> str | None:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return "needs root and mount(8) for a small tmpfs"
    return None


@pytest.fixture
def full_disk(tmp_path):
    """A 200 KB tmpfs (a full disk that is ours to fill), unmounted after the test."""
    why = _can_mount()
    if why:
        pytest.skip(why)
    d = tmp_path / "small"
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(d)], capture_output=True).returncode:
        pytest.skip("mount -t tmpfs was refused (a container without CAP_SYS_ADMIN)")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)


def test_on_a_full_disk_every_command_is_one_line(files, full_disk):
    """On a 200 KB tmpfs: export, simulate (JSON + spikes), train, energy, parity exit 2 with one
    line (no traceback, no segfault), leave no temporary file and the old targets as they were."""
    _, g, ck = files
    olds = _olds(full_disk, "g.nir", "s.json", "s.h5", "c.pt", "e/energy.json", "p.json")
    st = os.statvfs(full_disk)
    (full_disk / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 2048))     # a full disk
    runs = [("export", ck, "-o", olds["g.nir"]),
            ("simulate", g, "-n", 16, "-T", 8, "--json", olds["s.json"], "--record", "all", "--spikes-out",
             olds["s.h5"], "--no-progress"),
            ("train", "--model", "mst-tiny", "--epochs", 1, "--out", olds["c.pt"], "--no-progress"),  # before training
            ("energy", g, "-n", 4, "-T", 4, "--out", full_disk / "e", "--no-progress"),
            ("parity", g, "-n", 2, "-T", 4, "--json", olds["p.json"], "--no-progress")]
    for args in runs:
        line = one_line_error(run_mst(*args))
        assert "no space left on" in line, (args[0], line)
    _unchanged(olds)
    assert not _temps(full_disk)
