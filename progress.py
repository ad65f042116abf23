"""Progress bars for long work: at most two redraws a second, and none when stderr is not a
terminal (a log file gets no carriage-return frames)."""
from __future__ import annotations

import sys

from tqdm import tqdm

REFRESH_SECONDS = 0.5


def bar(iterable=None, *, enabled: bool = True, **kw) -> tqdm:
    """tqdm with our refresh rate; `enabled=False` (e.g. --no-progress) turns it off."""
    shown = enabled and sys.stderr.isatty()
    return tqdm(iterable, disable=not shown, mininterval=REFRESH_SECONDS, maxinterval=10 * REFRESH_SECONDS, **kw)
