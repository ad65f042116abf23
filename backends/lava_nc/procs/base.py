"""What every one of our Lava process models shares: the logical clock, error capture, results.

Time (docs/lava-backend.md): image i's logical step s reaches a process at Lava step
i * T + s + arrival, so every process knows which image and step it is working on, and is idle
(sends zeros, keeps no state) outside its images. numpy only: torch inside a forked process
model can deadlock (docs/sources.md, "Lava in practice").
"""
from __future__ import annotations

import os
import traceback

import numpy as np
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.process.process import AbstractProcess

# The clock parameters every one of our processes takes.
CLOCK = ("node", "record", "arrival", "steps", "images", "first_sample", "out_dir")


def report(out_dir: str, who: str) -> None:
    """Write the exception being handled to errors.txt (the parent stops the run and shows it)."""
    last = traceback.format_exc().strip().splitlines()[-1]
    with open(os.path.join(out_dir, "errors.txt"), "a") as f:
        f.write(f"{who}: {last}\n")


class NodeProcess(AbstractProcess):
    """A process that runs one NIR node. `clock` is a dict of the CLOCK parameters."""

    def __init__(self, clock: dict, **params):
        missing = [k for k in CLOCK if k not in clock]
        if missing:
            raise ValueError(f"clock parameters missing: {missing}")
        super().__init__(**clock, **params)


class NodeModel(PyLoihiProcessModel):
    """Calls `step()` every Lava step; an exception is written to errors.txt (the parent stops the
    run and reports it: Lava itself would hang) and re-raised."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        p = proc_params
        self.node, self.arrival, self.steps = p["node"], int(p["arrival"]), int(p["steps"])
        self.images, self.first_sample = int(p["images"]), int(p["first_sample"])

    def clock(self) -> tuple[int, int]:
        """(local image index, logical step 1..T), or (-1, 0) when idle."""
        k = self.time_step - 1 - self.arrival
        if k < 0 or k >= self.steps * self.images:
            return -1, 0
        return k // self.steps, k % self.steps + 1

    def last_step(self) -> bool:
        return self.time_step == self.arrival + self.steps * self.images

    def run_spk(self):
        try:
            self.step()
        except Exception:  # noqa: BLE001 - reported to the parent, then re-raised
            report(self.proc_params["out_dir"], self.node)
            raise

    def step(self):
        raise NotImplementedError

    def save(self, **arrays) -> None:
        """Results of this node (written once, at its last active step)."""
        path = os.path.join(self.proc_params["out_dir"], f"node{self.proc_params['record']}.npz")
        np.savez(path, node=np.array(self.node), **arrays)
