"""mstdeploy's Python API: every step of the road as a function, named as on the command line (the
`mst` commands share its input handling; docs/api.md). A graph argument is a `nir.NIRGraph` or a
NIR file's path; inputs are a data set's name, a tensor or array (static (samples, ...) or one
frame per step (steps, samples, ...)), a torch Dataset of (x, label) or an input file's path.
Bad input raises `UserError` with the CLI's one-line message; a run that is probably not what was
meant warns (`Caution`). Torch, Lava and matplotlib are imported only by the functions that use
them."""
from __future__ import annotations

import contextlib
import functools
import os
import pathlib
import tempfile
from dataclasses import dataclass, field

from .errors import Caution, UserError
from .faults import allocation_failure

__all__ = ["UserError", "Caution", "Simulation", "load_model", "import_official", "train", "evaluate", "export",
           "read", "write", "samples", "simulate", "lava", "parity", "energy", "resources", "plan", "split"]


def _memory(f):
    """A failed allocation (a memory cap met anyway) as the CLI's one line: a UserError."""
    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except (MemoryError, RuntimeError) as e:
            failed = allocation_failure(e)
            if failed is None:
                raise
            raise failed from None
    return wrapped


def load_model(path, *, mask=None):
    """One of our checkpoints as its model (eval mode); `mask`: a masking ratio (or one per block)
    instead of the trained one."""
    from .models import checkpoint
    return checkpoint.load(path, **({} if mask is None else {"mask": mask}))[0]


def import_official(path, *, img_size: int | None = None, attention: str = "softmax", levels: int = 16, mask=None):
    """An official MST checkpoint (github bic-L/Masked-Spiking-Transformer) as our model."""
    from .models import checkpoint
    from .models.official import import_official as imported
    flags = {"attention": attention, "levels": levels, **({} if mask is None else {"mask": mask})}
    return imported(checkpoint.load_file(path), img_size, **flags)


@_memory
def train(model: str = "mst-tiny", dataset: str = "digits", *, data=None, out=None, recipe: str = "default",
          progress: bool = False, **options):
    """Train a preset on a data set (a folder of your own: dataset="folder", data=DIR). `options`,
    named as `mst train`'s flags: the recipe's numbers (epochs, lr, min_lr, warmup_lr,
    warmup_epochs, weight_decay, label_smoothing, clip_grad; the recipe's defaults otherwise),
    batch_size, seed, device, and config fields (img_size, mask, levels, attention, mask_sites,
    steps). Returns (model, figures); the checkpoint goes to `out` (default: nowhere you keep)."""
    from .models.recipe import DEFAULTS, resolve
    from .models.train import TrainArgs, train as run
    if recipe not in DEFAULTS:
        raise UserError(f"recipe must be one of {', '.join(DEFAULTS)}, got {recipe!r}")
    numbers = resolve(recipe, {k: options.pop(k, None) for k in DEFAULTS[recipe]})
    common = {k: options.pop(k) for k in ("batch_size", "seed", "device") if k in options}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(out or os.path.join(tmp, "model.pt"))
        figures = run(TrainArgs(model=model, dataset=dataset, data=None if data is None else str(data), out=path,
                                overrides=options, recipe=recipe, progress=progress, **common, **numbers))
        return load_model(path), figures


@_memory
def evaluate(model, dataset: str = "digits", *, data=None, batch_size: int = 256, seed: int = 0) -> float:
    """Top-1 accuracy of a model (QCFS: the ANN; SAFormer: the SNN) on a data set's test split, or
    on a Dataset; `seed`: of the masks."""
    from torch.utils.data import Dataset
    from .data import datasets
    from .models.evaluate import accuracy
    test = dataset if isinstance(dataset, Dataset) else datasets.load(
        dataset, "test", model.config.img_size, None if data is None else str(data),
        steps=getattr(model.config, "steps", None))
    return accuracy(model, test, batch_size=batch_size, seed=seed)


@_memory
def export(model, *, seed: int = 0, spike_levels: int = 1, standard: bool = False, layernorm: str = "cumulative",
           reset: str = "subtract", calibrate=None, calibrate_steps: int = 4, calibrate_method: str = "both", dataset: str | None = None,
           data=None):
    """The model's spiking network as a NIR graph (docs/nir-extensions.md). `calibrate`: training
    images (a tensor) or how many of `dataset`'s, to calibrate binary neurons for
    `calibrate_steps` steps (compare/calibrate.py). `reset`: the converted neurons' reset, `subtract`
    (the exact conversion) or `zero` (stock IF, what netx's LIF runs: export/lower.py)."""
    import torch
    from .export.lower import to_nir
    graph = to_nir(model, seed=seed, standard=standard, layernorm=layernorm, spike_levels=spike_levels, reset=reset)
    if calibrate is None:
        return graph
    from .compare.calibrate import calibrate as calibrated
    if standard:
        raise UserError("--calibrate changes our neurons' potentials and biases: not with --standard")
    if not isinstance(calibrate, torch.Tensor):
        from .data import datasets
        from .simulate.evaluate import stack_images
        if dataset is None:
            raise UserError("--calibrate needs --dataset: the images come from its training split")
        train_set = datasets.load(dataset, "train", model.config.img_size, None if data is None else str(data))
        calibrate, _ = stack_images(train_set, int(calibrate))
    reference = to_nir(model, seed=seed, layernorm=layernorm, spike_levels=model.config.levels)
    if reset == "zero":                   # what resets to zero is calibrated in its thresholds
        from .compare.calibrate import calibrate_thresholds
        return calibrate_thresholds(graph, reference, calibrate, calibrate_steps, progress=False)
    return calibrated(graph, reference, calibrate, calibrate_steps, calibrate_method, progress=False)


def read(path, *, dt: float | None = None, producer: str | None = None, reset: str | None = None):
    """A NIR file as a graph in steps: `dt` its time step, `producer` the framework that wrote it
    (snntorch, norse, spikingjelly, sinabs, spyx, rockpool: its conventions, docs/interop.md), `reset` snnTorch's."""
    from .ir.io import read_graph
    return read_graph(path, dt, producer, reset)


def write(graph, path) -> None:
    """The graph as a NIR file, or as a lava-dl netx file when `path` ends in .net (loihi/netx.py:
    what netx cannot express is refused); whole or not at all."""
    if str(path).endswith(".net"):
        from .atomic import write_bytes
        from .loihi.netx import netx_bytes
        write_bytes(path, netx_bytes(_graph(graph)))
        return
    from .ir.io import write_graph
    write_graph(graph, path)


def _graph(graph):
    return read(graph) if isinstance(graph, (str, os.PathLike)) else graph


@contextlib.contextmanager
def _on_disk(graph):
    """A path to the graph (Lava's worker reads a file)."""
    if isinstance(graph, (str, os.PathLike)):
        yield graph
        return
    with tempfile.TemporaryDirectory(prefix="mst-api-") as tmp:
        path = pathlib.Path(tmp) / "graph.nir"
        write(graph, path)
        yield path


def samples(graph, inputs=None, *, labels=None, steps: int | None = None, n: int | None = None, data=None,
            default_steps: int = 32):
    """(Dataset of (x, label), steps) a graph runs on; see the module docstring for `inputs`.
    `labels`: of an array or an .npy file (a label file's path); `steps`: per sample (frames set
    it); `n`: the first n samples; `data`: a data set's folder."""
    import numpy as np
    from torch.utils.data import Dataset, Subset
    from .data import datasets
    from .data.inputs import Frames, as_inputs, load_inputs
    from .ir.netx import frame_transform
    from .simulate.evaluate import graph_classes, graph_image_shape, load_images
    graph = _graph(graph)
    if inputs is None or isinstance(inputs, str) and inputs in datasets.DATASETS:
        if labels is not None:
            raise UserError("--labels goes with --inputs (labels= with inputs of your own)")
        steps = steps or default_steps
        ds = load_images(inputs or "digits", graph, None if data is None else str(data), n, steps)
        transform = frame_transform(graph)          # a netx file's integer frames (ir/netx.py)
        return (ds if transform is None else Frames(ds, *transform)), steps
    if data is not None:
        raise UserError("--inputs replaces --dataset and --data: give one or the other")
    shape, classes = graph_image_shape(graph), graph_classes(graph)
    if isinstance(inputs, Dataset):
        ds, frames = inputs, None
    elif isinstance(inputs, (str, os.PathLike)):
        ds = load_inputs(inputs, shape, labels, classes)
        frames = ds.steps
    else:
        ds = as_inputs(inputs, None if labels is None else np.asarray(labels), shape, classes)
        frames = ds.steps
    if frames is not None and steps is not None and steps != frames:
        where = inputs if isinstance(inputs, (str, os.PathLike)) else "the inputs"
        raise UserError(f"{where} has {frames} steps per sample (time-varying inputs); -T is {steps}: leave -T out "
                        f"or give {frames}")
    steps = frames or steps or default_steps
    if n is not None and n < len(ds):
        sub = Subset(ds, range(n))
        sub.labelled = getattr(ds, "labelled", True)
        ds = sub
    return ds, steps


@dataclass
class Simulation:
    """A run of the reference simulator: outputs of every step and what was counted."""
    logits: object                  # (T, samples, K) tensor, every step's output
    accuracy: dict | None           # t -> top-1 with the outputs summed over steps 1..t (labelled inputs)
    spike_counts: dict              # node -> spikes (all steps and samples; graded: payloads)
    synaptic_events: dict           # synaptic node -> delivered events
    per_inference: dict             # per sample: events, messages, neuron updates, host MACs
    spikes: dict = field(default_factory=dict)     # recorded node -> (samples, T, *shape) uint8
    warnings: list = field(default_factory=list)   # a silent run, with its likely cause


@_memory
def simulate(graph, inputs=None, steps: int | None = None, labels=None, *, n: int | None = None, data=None,
             batch_size: int = 64, fixed_point: bool = False, dtype: str = "float32", device: str = "auto",
             chunk: int | None = None, record=None, progress: bool = False) -> Simulation:
    """The reference simulator on `inputs` for `steps` steps (docs/time-and-randomness.md)."""
    import torch
    from .compare.energy import per_inference
    from .ir.silence import silent
    from .machine import pick_device
    from .simulate.engine import Simulator
    from .simulate.evaluate import evaluate, recorded
    graph = _graph(graph)
    ds, steps = samples(graph, inputs, labels=labels, steps=steps, n=n, data=data)
    sim = Simulator(graph, pick_device(device), torch.float64 if dtype == "float64" else torch.float32,
                    fixed_point=fixed_point, chunk=chunk)
    ev = evaluate(sim, ds, steps, batch_size, progress=progress, record=recorded(sim, record), keep_logits=True)
    return Simulation(ev.logits, ev.curve() if getattr(ds, "labelled", True) else None, ev.spike_counts,
                      ev.synaptic_events, per_inference(ev, ev.images), ev.spikes, silent(graph, ev.spike_counts))


@_memory
def lava(graph, inputs=None, steps: int | None = None, labels=None, *, n: int | None = 8, data=None,
         fixed_point: bool = False, timeout: float = 900, progress: bool = False):
    """The graph as Lava processes (float, or Loihi's fixed point bit-accurately): a LavaRun with
    every step's logits (T, samples, K), the neurons' spikes and predictions()."""
    from .backends.lava_nc.run import run_lava
    from .simulate.evaluate import stack_images
    g = _graph(graph)                                 # read once here (the Lava worker reads its own)
    ds, steps = samples(g, inputs, labels=labels, steps=steps, n=n, data=data)
    x, _ = stack_images(ds)
    with _on_disk(graph) as path:
        return run_lava(path, x.numpy(), steps, fixed_point, timeout=timeout, progress=progress, graph=g)


@_memory
def parity(graph, inputs=None, steps: int | None = None, *, labels=None, n: int | None = 8, data=None,
           fixed_point: bool = False, timeout: float = 900, progress: bool = False,
           block_nodes: int | None = None) -> dict:
    """Lava against the reference simulator, spike by spike (the `mst parity` report)."""
    from .compare.parity import run_parity
    from .simulate.evaluate import stack_images
    g = _graph(graph)
    ds, steps = samples(g, inputs, labels=labels, steps=steps, n=n, data=data)
    x, _ = stack_images(ds)
    with _on_disk(graph) as path:
        return run_parity(path, x, steps, fixed_point, timeout, progress, block_nodes=block_nodes, graph=g)


@_memory
def energy(graph, inputs=None, labels=None, steps: int | None = None, *, n: int | None = None, data=None,
           ratios=None, ann=None, tolerance: float = 0.5, backend: str = "reference", fixed_point: bool = False,
           out=None, progress: bool = False) -> dict:
    """Events, energy and accuracy per inference, priced at T = 1, 2, 4, .., steps against the ANN
    (docs/energy.md); `ann`: the model the graph came from (or its checkpoint's path), for its
    accuracy on the same samples and the smallest T within `tolerance` points of it; `out`: a
    folder for energy.json and the plots. Returns the report."""
    from .compare.energy_report import energy_report, write_report
    from .models.evaluate import ann_accuracy as baseline
    graph = _graph(graph)
    ds, steps = samples(graph, inputs, labels=labels, steps=steps, n=n, data=data)
    if not getattr(ds, "labelled", True):
        raise UserError("the energy report gives accuracy beside the energy: give labels")
    ann_accuracy = None
    if ann is not None:
        model = load_model(ann) if isinstance(ann, (str, os.PathLike)) else ann
        ann_accuracy = baseline(model, ds, f"ann {ann}" if isinstance(ann, (str, os.PathLike)) else "the ANN")
    report, spikes = energy_report(graph, ds, steps, source="api", dataset=inputs if isinstance(inputs, str) else "",
                                   fixed_point=fixed_point, backend=backend, ratios=ratios, progress=progress,
                                   ann_accuracy=ann_accuracy, tolerance=tolerance / 100)
    if out is not None:
        write_report(report, out, spikes)
    return report


def resources(graph, profile: str = "loihi2") -> dict:
    """The graph's placement on Loihi cores without a run (loihi/resources.py): `plan`'s layers,
    cores and chips, fan-in split on relays, and what does not fit."""
    from .loihi.chip import CHIPS
    from .loihi.resources import resources as mapped
    if profile not in CHIPS:
        raise UserError(f"profile must be one of {', '.join(CHIPS)}, got {profile!r}")
    return mapped(_graph(graph), CHIPS[profile])


def split(graph, profile: str = "loihi2"):
    """The graph with every fan-in beyond a core's input axons split into partial sums on relay
    neurons (loihi/split.py): what `plan` places; it simulates as the graph does."""
    from .loihi.chip import CHIPS
    from .loihi.split import split as relayed
    if profile not in CHIPS:
        raise UserError(f"profile must be one of {', '.join(CHIPS)}, got {profile!r}")
    return relayed(_graph(graph), CHIPS[profile].in_axons)[0]


@_memory
def plan(graph, inputs=None, steps: int | None = None, *, n: int | None = 8, data=None, profile: str = "loihi2",
         fixed_point: bool = False, progress: bool = False, sanafe: str | None = None) -> dict:
    """The graph on Loihi chips with time (loihi/chip.py, docs/loihi2-plan.md): fan-in split on
    relays (`split`), cores and chips with weight sharing, the busiest core, step time, latency,
    throughput, dynamic and static energy per inference, EDP; activity from a reference run of the
    split graph on `inputs` (time depends on the spikes). `sanafe`: a Python that has SANA-FE
    (`make sanafe`: .venv/sanafe/bin/python) to run it on the first input beside the plan
    (loihi/sanafe.py; LIF graphs such as netx files)."""
    import torch
    from .compare.energy import MODELS, energy as priced, per_inference
    from .loihi.chip import CHIPS, activity, plan as planned
    from .simulate.engine import Simulator
    from .simulate.evaluate import evaluate
    graph = split(graph, profile)
    ds, steps = samples(graph, inputs, steps=steps, n=n, data=data)
    sim = Simulator(graph, "cpu", torch.float32, fixed_point=fixed_point)
    ev = evaluate(sim, ds, steps, 64, progress=progress)
    dynamic = priced(per_inference(ev, ev.images), MODELS[profile])["total"]
    rep = planned(graph, CHIPS[profile], activity(ev, ev.images), steps, dynamic)
    if sanafe is not None:
        from .loihi.sanafe import cross_check
        rep["sanafe"] = cross_check(graph, ds[0][0].numpy(), steps, rep["depth"], sanafe)
    return rep
