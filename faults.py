"""Faults of the machine as one line: a write that fails (full disk, quota, I/O error, closed
pipe) and an allocation that fails (a memory cap), each a UserError that says what failed and
what to do. Libraries wrap the OS's error in their own text (torch: "file write failed", h5py:
"errno = 28"); we read the cause back from it, and from the file system's free space."""
from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import re

from .errors import UserError

WRITE_CAUSES = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded", errno.EIO: "input/output error",
                errno.EFBIG: "file too large", errno.EROFS: "read-only file system", errno.EPIPE: "the reader went away",
                errno.ENOMEM: "out of memory"}
_ERRNO = re.compile(r"errno = (\d+)|\[Errno (\d+)\]")
_ALLOC = re.compile(r"can't allocate memory|not enough memory|out of memory|DefaultCPUAllocator", re.I)
_BYTES = re.compile(r"allocate (\d+) bytes|Tried to allocate ([\d.]+ [KMGT]iB)")


def free_bytes(path) -> int | None:
    """Bytes a non-root writer may still put in the file system of `path` (its nearest existing
    folder), or None where unknown."""
    p = pathlib.Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p if p.is_dir() else p.parent)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def no_space(path, need: int, free: int) -> UserError:
    return UserError(f"no space left on {pathlib.Path(path).parent}: {path} needs about {size(need)}, "
                     f"{size(free)} free")


def write_failure(exc: BaseException, path, need: int | None = None) -> UserError | None:
    """The one-line error for `exc` raised while writing `path` (`need` bytes, where known), or
    None when `exc` is not a failed write."""
    if isinstance(exc, UserError):
        return None
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code not in WRITE_CAUSES:
        m = _ERRNO.search(text)
        code = int(m.group(1) or m.group(2)) if m else None
    if code not in WRITE_CAUSES:
        if "No space left" in text:
            code = errno.ENOSPC
        elif isinstance(exc, RuntimeError) and "write" in text.lower() and "fail" in text.lower():
            code = errno.EIO                                   # torch's writer: the cause is not kept
        else:
            return None
    free = free_bytes(path)
    if code in (errno.EIO, errno.ENOSPC) and free is not None and need is not None and free < need:
        return no_space(path, need, free)
    if code == errno.ENOSPC:
        return UserError(f"no space left on {pathlib.Path(path).parent}: cannot write {path}"
                         + (f" ({size(free)} free)" if free is not None else ""))
    return UserError(f"cannot write {path}: {WRITE_CAUSES[code]}")


@contextlib.contextmanager
def writing(path, need: int | None = None):
    """A block that writes `path`: a failed write in it raises its one-line UserError instead."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 - only failed writes are translated; the rest re-raised
        failed = write_failure(e, path, need)
        if failed is None:
            raise
        raise failed from None


def allocation_failure(exc: BaseException, lower: str = "-n, --batch-size or --chunk") -> UserError | None:
    """The one-line error for a failed allocation (MemoryError, numpy's, torch's allocator or CUDA
    out of memory), or None for any other error."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not (isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and _ALLOC.search(text))):
        return None
    m = _BYTES.search(str(exc))
    what = ""
    if m:
        what = f" of {size(int(m.group(1)))}" if m.group(1) else f" of {m.group(2)}"
    return UserError(f"out of memory: an allocation{what} failed (a memory limit of this machine or job); "
                     f"lower {lower}")
