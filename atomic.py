"""Writes that respect their target: a reader never sees a half-written output, a file that is not
a regular file (a device, a FIFO, a folder) is never replaced, a symlink keeps pointing where it
did (its target is replaced), an existing file keeps its mode and a new one gets the umask's.

Temporary files carry our pid (`.<name>.mst<pid>.<random>.tmp`): they are removed on every exit
path we control (an exception, SIGINT, SIGTERM through the CLI's handler), and those of processes
that no longer exist (killed with SIGKILL) are removed the next time we write into that folder.
"""
from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re
import shutil
import signal
import stat
import tempfile

from .errors import UserError
from .faults import free_bytes, no_space, writing

_STALE = re.compile(r"^\..*\.mst(\d+)\.[^.]*\.tmp$")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _check_creatable(folder: pathlib.Path, what: str, path) -> None:
    """`folder` exists, or can be created, in a folder we can write: the nearest one that exists."""
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"{what} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path}: the folder {folder} is not writable")


def output_target(path, what: str = "output") -> pathlib.Path:
    """The regular file a write to `path` replaces (a symlink's target), checked before any work:
    not empty, not a folder, device, FIFO or socket, in a folder we can create and write."""
    if path is None or str(path).strip() == "":
        raise UserError(f"{what}: the path is empty")
    p = pathlib.Path(path)
    target = pathlib.Path(os.path.realpath(p)) if p.is_symlink() else p
    if target.exists() or target.is_symlink():
        try:
            mode = target.stat().st_mode
        except OSError:
            raise UserError(f"{what} {path}: cannot be read (a broken link?)") from None
        if not stat.S_ISREG(mode):
            raise UserError(f"{what} {path} is a {_kind(mode)}, not a regular file: refusing to replace it"
                            + (" (write to a file, or - for standard output where the option allows it)"
                               if not stat.S_ISDIR(mode) else ""))
    _check_creatable(target.parent, what, path)
    return target


def output_folder(path, what: str = "output folder") -> pathlib.Path:
    """A folder for several outputs: it exists as a folder, or can be created."""
    if path is None or str(path).strip() == "":
        raise UserError(f"{what}: the path is empty")
    p = pathlib.Path(os.path.realpath(path))
    if p.exists() and not p.is_dir():
        raise UserError(f"{what} {path} exists and is not a folder")
    _check_creatable(p, what, path)
    return p


def alive(pid: int) -> bool:
    """Whether process `pid` exists (our temporaries of dead ones may go)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: pathlib.Path) -> None:
    """Remove our temporaries (files and staging folders) left in `folder` by processes that died."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = _STALE.match(name)
        if m and int(m.group(1)) != os.getpid() and not alive(int(m.group(1))):
            path = folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM for a few system calls that must not be split (create + register,
    rename + forget); they are delivered right after."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _new_mode(target: pathlib.Path) -> int:
    if target.exists():
        return stat.S_IMODE(target.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _temp_name(name: str) -> str:
    return f".{name}.mst{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path, what: str = "output"):
    """Yield a temporary path beside the target of `path`; rename it into place only if the block
    succeeds; a failed write (full disk, quota, I/O) raised in the block is one UserError. See the
    module docstring for what is refused and kept."""
    target = output_target(path, what)
    tmp = None
    try:
        with writing(path):
            target.parent.mkdir(parents=True, exist_ok=True)
            remove_stale(target.parent)
            with signals_held():
                fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_temp_name(target.name), suffix=".tmp")
                os.close(fd)
            yield pathlib.Path(tmp)
            os.chmod(tmp, _new_mode(target))
            with signals_held():
                os.replace(tmp, target)
    finally:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def write_files(outputs: dict, what: str = "output") -> None:
    """Several files (path -> bytes) that appear whole or not at all: each written to a temporary
    beside its target, the space they need checked first, then all renamed in with signals held.
    A failed write is one UserError and leaves every target as it was."""
    targets = {output_target(p, what): (p, data) for p, data in outputs.items()}
    temps: dict = {}
    try:
        need: dict = {}
        for target, (p, data) in targets.items():
            with writing(p):                               # mkdir on a full or read-only disk
                target.parent.mkdir(parents=True, exist_ok=True)
            dev = os.stat(target.parent).st_dev
            need[dev] = (need.get(dev, (0, p))[0] + len(data), p)
        for n, p in need.values():
            free = free_bytes(p)
            if free is not None and n > free:
                raise no_space(p, n, free)
        for target, (p, data) in targets.items():
            with writing(p, len(data)):
                remove_stale(target.parent)
                with signals_held():
                    fd, temps[target] = tempfile.mkstemp(dir=target.parent, prefix=_temp_name(target.name),
                                                         suffix=".tmp")
                _write(fd, data)
                os.chmod(temps[target], _new_mode(target))
        if temps:
            with writing(next(iter(outputs))), signals_held():
                for target, tmp in temps.items():
                    os.replace(tmp, target)
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _write(fd: int, data) -> None:
    """Every byte of every output goes through here (tests inject faults at this point)."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_bytes(path, data, what: str = "output") -> None:
    """Write bytes atomically (write_files of one file)."""
    write_files({path: data}, what)


def write_text(path, text: str, what: str = "output") -> None:
    """Write text atomically; `-` writes to standard output."""
    if str(path) == "-":
        print(text)
        return
    write_bytes(path, text.encode(), what)


@contextlib.contextmanager
def staged_folder(folder, owned: tuple[str, ...] = ()):
    """Several outputs that appear whole or not at all: yield a staging folder inside `folder`;
    when the block succeeds every file in it is renamed into `folder` with signals held, and the
    `owned` names it did not write this time are removed (no mix of new and old report files)."""
    folder = output_folder(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale(folder)
    with signals_held():
        stage = pathlib.Path(tempfile.mkdtemp(dir=folder, prefix=_temp_name("stage"), suffix=".tmp"))
    try:
        try:
            yield stage
        except UserError as e:                   # a failed write names the final place, not the stage
            raise UserError(str(e).replace(str(stage), str(folder))) from None
        names = sorted(p.name for p in stage.iterdir())
        targets = {name: output_target(folder / name) for name in names}
        for name, target in targets.items():
            os.chmod(stage / name, _new_mode(target))
        with signals_held():
            for name, target in targets.items():
                try:
                    os.replace(stage / name, target)
                except OSError as e:             # a link to another file system: copy, then drop
                    if e.errno != errno.EXDEV:
                        raise
                    shutil.copy2(stage / name, target)
            for name in set(owned) - set(names):
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:                              # a folder made for outputs that never came
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def check_outputs(outputs: dict, inputs=()) -> None:
    """Before any work: every output (option -> path, None when not asked for) can be written,
    none is one of the run's inputs, and no two are the same file. `--json -` is standard output."""
    seen: dict[str, str] = {}
    ins = {os.path.realpath(i): str(i) for i in inputs if i is not None}
    for option, path in outputs.items():
        if path is None:
            continue
        if str(path) == "-":
            if option == "--json":             # a JSON report may go to standard output
                continue
            raise UserError(f"{option} -: this output cannot go to standard output; name a file")
        real = os.path.realpath(output_target(path, option))
        if real in ins:
            raise UserError(f"{option} {path} is the input {ins[real]}: refusing to overwrite it")
        if real in seen:
            raise UserError(f"{option} and {seen[real]} name the same file {path}")
        seen[real] = option
