"""What this machine offers a run: memory available now, the torch device asked for, and how
the C allocator treats freed memory."""
from __future__ import annotations

import ctypes

from .errors import UserError

_KEEPING = False
UNKNOWN = 1 << 62                       # no limit known


def available_memory(device=None) -> int:
    """Bytes of memory this process may still take: a CUDA device's free memory, else the least
    of the host's MemAvailable, its cgroup's limit less its usage (v2 memory.max, v1
    memory.limit_in_bytes: a container's or a batch job's) and its address-space and data limits
    (RLIMIT_AS, RLIMIT_DATA: `ulimit -v`, `prlimit --as`) less what it has mapped; a large number
    where none is known."""
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch
        return int(torch.cuda.mem_get_info(device)[0])
    return max(0, min(_meminfo(), _cgroup(), _rlimits())) + _held_free()


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                                                "uordblks", "fordblks", "keepcost")]


def _held_free() -> int:
    """Bytes freed into glibc's heap and kept there (keep_freed_memory): ours to reuse, though
    every limit above counts them as taken; 0 where the C library cannot say."""
    if not _KEEPING:
        return 0
    try:
        f = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return 0
    f.restype = _Mallinfo2
    return int(f().fordblks)


def _read(path) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _meminfo() -> int:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return UNKNOWN


def _cgroup() -> int:
    """The memory cgroup's limit less its usage (v2, else v1), UNKNOWN without a limit."""
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":                                         # v2: "0::/path"
            base = f"/sys/fs/cgroup{path}"
            limit, usage = _read(f"{base}/memory.max"), _read(f"{base}/memory.current")
        elif "memory" in controllers.split(","):
            base = f"/sys/fs/cgroup/memory{path}"
            limit, usage = _read(f"{base}/memory.limit_in_bytes"), _read(f"{base}/memory.usage_in_bytes")
        else:
            continue
        if limit and usage and limit.strip().isdigit() and int(limit) < UNKNOWN:
            return int(limit) - int(usage)
    return UNKNOWN


def _rlimits() -> int:
    """The address-space and data limits less what this process has mapped (VmSize, VmData)."""
    import resource
    status = {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in
                                                       (_read("/proc/self/status") or "").splitlines() if ":" in line)
              if k in ("VmSize", "VmData")}
    out = UNKNOWN
    for limit, used in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft = resource.getrlimit(limit)[0]
        if soft != resource.RLIM_INFINITY and used in status:
            out = min(out, soft - status[used])
    return out


def check_fits(need: int, what: str, lower: str, device=None) -> None:
    """A clear error before allocating `need` bytes that are not there (on `device`, default the
    host); `lower` says what to lower."""
    have = available_memory(device)
    if need > have:
        raise UserError(f"{what} needs about {need / 2**30:.1f} GiB of memory, {have / 2**30:.1f} GiB is "
                        f"available: lower {lower}")


DEVICES = ("auto", "cpu", "cuda")          # what --device takes


def pick_device(device: str):
    """`auto` (CUDA when there is one), `cpu` or `cuda` (DEVICES); `cuda` without a CUDA device is an error."""
    import torch
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    return torch.device(device)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (no mmap for big blocks, no trimming
    below 2 GiB): a simulation allocates and frees the same large tensors at every node and
    chunk, and glibc otherwise returns each block over 32 MiB to the OS, so that the next one
    page-faults afresh (measured, docs/simulator-speed.md). The process keeps its peak memory until
    it exits, as jemalloc or tcmalloc would. False where the C library has no mallopt."""
    global _KEEPING
    if not _KEEPING:
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            return False
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        _KEEPING = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    return _KEEPING
