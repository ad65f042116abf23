"""A lava-dl netx file run by lava-dl's own loader (`netx.hdf5.Network`: Lava's stock Dense, Conv,
DelayDense and LIF with their bit-accurate fixed-point models), in the worker interpreter
(worker.py), for `mst lava|parity x.net`: parity against Intel's processes, not ours.

Inputs as the netx tutorials feed them: into the input layer's neuron `a_in` (a RingBuffer, one
frame per step), or into the network's `inp` when the file has no input layer. Layouts: netx
holds (W, H, C) where the file and our graph say (C, H, W) (netx/hdf5.py: `shape[::-1]`). Timing:
every Dense or Conv sends the previous step's sum, so the neuron after j synapses shows at Lava
step t + j what the reference shows at step t (docs/lava-backend.md); each image runs in a fresh
network, whose layers netx resets (`reset_interval`, `reset_offset`: LIFReset) at the step their
first input arrives, as it does for a stream of samples: a bias does not act during the pipeline's
fill, as the reference starts every neuron when its input does. A file without an input neuron
takes its frames as graded messages (`input_message_bits`, loihi/netx.py); a readout layer's
synaptic output is recorded as the logits, in the file's units (W / 64 times messages in 2^-6 for
sigma-delta). A sigma-delta file is read with Lava's lag (ir/netx.lagged): its layers are not
shifted, and their messages are recorded as values.
"""
from __future__ import annotations

import os
import time

import h5py
import numpy as np

from ...errors import UserError
from ...ir.netx import W_SCALE, blocks, is_netx, lagged
from ...loihi.widths import GRADED_BITS, SD_SHIFT

FLOAT_REFUSED = "netx's blocks run in fixed point only (their process models are Loihi's integers): add --fixed-point"


def is_netx_file(path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return is_netx(f)
    except OSError:
        return False


def _to_lava(x: np.ndarray) -> np.ndarray:
    """(C, H, W) -> netx's (W, H, C); vectors unchanged."""
    return x.transpose(2, 1, 0) if x.ndim == 3 else x


def _from_lava(x: np.ndarray) -> np.ndarray:
    """(W, H, C, steps) -> (steps, C, H, W); (n, steps) -> (steps, n)."""
    return x.transpose(3, 2, 1, 0) if x.ndim == 4 else x.T


def run_netx(job: dict) -> dict:
    """Each image for `steps` (+ the depth) Lava steps; writes node<i>.npz with (images, steps,
    *shape) spikes per block, and returns the meta (records: index -> node)."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    out, steps = job["out_dir"], int(job["steps"])
    images = np.load(os.path.join(out, "images.npy"))
    with h5py.File(job["graph"], "r") as f:
        named = blocks(f)
        graded = lagged(f)                          # sigma-delta: messages are values in 2^-6
    depth = named[-1][1]
    total = steps + depth
    spikes = {name: [] for name, _ in named}
    t_build = t_compile = t_run = 0.0
    for image in images:
        t0 = time.perf_counter()
        fed = named[0][0] == "input.neuron"            # the input layer's neuron takes the frames at step 1
        net = netx.hdf5.Network(net_config=job["graph"], input_message_bits=GRADED_BITS, reset_interval=total + 1,
                                reset_offset=0 if fed else 1)
        frames = image if image.ndim > len(net.inp.shape) else np.broadcast_to(image, (steps, *image.shape))
        frames = np.concatenate([frames, np.zeros((depth, *frames.shape[1:]))])       # after T: nothing
        data = np.stack([_to_lava(np.asarray(f)) for f in frames], -1).astype(np.int32)
        first = net.layers[0]
        port = first.neuron.a_in if isinstance(first, netx.blocks.process.Input) else net.inp
        source = Source(data=data)
        source.s_out.connect(port)
        sinks = []
        for layer, (name, _) in zip(net.layers, named):
            port = layer.synapse.a_out if name == "output" else layer.neuron.s_out      # a readout: its sums
            sink = Sink(shape=port.shape, buffer=total)
            port.connect(sink.a_in)
            sinks.append(sink)
        if len(sinks) != len(named):
            raise UserError(f"{job['graph']}: netx built {len(sinks)} blocks, the file reads as {len(named)}")
        t1 = time.perf_counter()
        cfg = Loihi2SimCfg(select_tag="fixed_pt")
        source.create_runtime(run_cfg=cfg)
        t2 = time.perf_counter()
        try:
            source.run(condition=RunSteps(num_steps=total))
            got = [s.data.get() for s in sinks]
        finally:
            source.stop()
        t3 = time.perf_counter()
        for (name, j), d in zip(named, got):
            d = _from_lava(np.asarray(d))[j:j + steps]
            spikes[name].append(d if name == "output" or graded else d != 0)
        t_build, t_compile, t_run = t_build + t1 - t0, t_compile + t2 - t1, t_run + t3 - t2
    records = {}
    for i, (name, _) in enumerate(named):
        if name == "output":
            continue
        s = np.stack(spikes[name])                                              # (images, T, *shape)
        if graded:                                                              # messages in 2^-6
            np.savez(os.path.join(out, f"node{i}.npz"), shape=np.array(s.shape[2:]), values=s.astype(np.float64))
        else:
            np.savez(os.path.join(out, f"node{i}.npz"), shape=np.array(s.shape[2:]),
                     spikes=np.packbits(s.reshape(*s.shape[:2], -1), axis=-1))    # run._collect's format
        records[str(i)] = name
    last = np.stack(spikes[named[-1][0]]).astype(np.float64)                   # (images, T, ...)
    logits = last.reshape(*last.shape[:2], -1).swapaxes(0, 1)
    unit = W_SCALE * ((1 << SD_SHIFT) if graded else 1)                         # weights x messages
    np.savez(os.path.join(out, "result.npz"), logits=logits / unit if named[-1][0] == "output" else logits,
             raw=np.zeros((0, 0)))
    return {"lava_steps": total * len(images), "depth": depth, "processes": 2 * len(named) + 1, "groups": 0,
            "delays_inserted": 0, "records": records, "build_seconds": t_build, "compile_seconds": t_compile,
            "run_seconds": t_run, "quantization": [], "loader": "lava-dl netx.hdf5.Network",
            "readout": named[-1][0] == "output"}
