"""Progress bars for long work, readable wherever it runs:

- a terminal, or a notebook (Jupyter draws carriage returns in place): a bar, at most two
  redraws a second;
- a log file or a pipe (`nohup mst train ... > log`): no frames, but a plain line every
  LOG_SECONDS once the work has lasted that long, and a last one when it ends, so an hour's
  training shows where it is and a short command's log stays empty.
"""
from __future__ import annotations

import sys

from tqdm import tqdm

REFRESH_SECONDS = 0.5
LOG_SECONDS = 60.0


class _Lines:
    """A log's view of a bar: each redraw becomes one line, without carriage returns."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def _drawn() -> bool:
    """stderr redraws in place: a terminal, or a Jupyter kernel's output."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def bar(iterable=None, *, enabled: bool = True, **kw) -> tqdm:
    """tqdm with our refresh rate; `enabled=False` (e.g. --no-progress) turns it off."""
    if not enabled or _drawn():
        return tqdm(iterable, disable=not enabled, mininterval=REFRESH_SECONDS, maxinterval=10 * REFRESH_SECONDS, **kw)
    return tqdm(iterable, file=_Lines(sys.stderr), mininterval=LOG_SECONDS, maxinterval=LOG_SECONDS,
                delay=LOG_SECONDS, ascii=True, ncols=100, **kw)
