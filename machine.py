"""What this machine offers a run: memory available now, the torch device asked for, and how
the C allocator treats freed memory."""
from __future__ import annotations

import ctypes

from .errors import UserError

_KEEPING = False


def available_memory(device=None) -> int:
    """Bytes of memory available now: a CUDA device's free memory, else the host's (Linux:
    MemAvailable), or a large number where unknown."""
    if device is not None and getattr(device, "type", None) == "cuda":
        import torch
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def check_fits(need: int, what: str, lower: str, device=None) -> None:
    """A clear error before allocating `need` bytes that are not there (on `device`, default the
    host); `lower` says what to lower."""
    have = available_memory(device)
    if need > have:
        raise UserError(f"{what} needs about {need / 2**30:.1f} GiB of memory, {have / 2**30:.1f} GiB is "
                        f"available: lower {lower}")


def pick_device(device: str):
    """`auto` (CUDA when there is one), `cpu` or `cuda`; `cuda` without a CUDA device is an error."""
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
