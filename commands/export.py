"""`mst export` (checkpoint -> NIR file) and `mst inspect` (what a NIR file holds)."""
from __future__ import annotations

from .common import add_mask_options, add_reading_options, count, mask_overrides, reading, seed, spike_levels


def add_parser(sub) -> None:
    x = sub.add_parser("export", help="convert a checkpoint to a spiking NIR graph (HDF5)")
    x.add_argument("checkpoint")
    x.add_argument("-o", "--output", required=True, help="NIR file to write (atomically)")
    add_mask_options(x)
    x.add_argument("--seed", type=seed, default=0, help="seed of the gating random stream")
    x.add_argument("--layernorm", choices=["cumulative", "per_step"], default="cumulative",
                   help="how the SNN reads an MST's LayerNorm head: cumulative (the norm of the running "
                        "mean, the exact readout; default) or per_step (each step's value, as the "
                        "official conversion)")
    x.add_argument("--spike-levels", metavar="M", type=spike_levels, default=1,
                   help="graded spikes: each neuron sends a payload k in 0..M per step and subtracts k "
                        "thresholds of lam / M (T x M >= L carries L QCFS levels; M = L is exact at T = 1); "
                        "default 1, binary spikes")
    x.add_argument("--calibrate", metavar="N", type=count, default=None,
                   help="calibrate the neurons for few steps on N training images (docs/few-steps.md): layer by "
                        "layer, the mean error against the ANN moves into initial potentials or biases")
    x.add_argument("--calibrate-steps", metavar="T", type=count, default=4, help="the T to calibrate for (default 4)")
    x.add_argument("--calibrate-method", choices=["potential", "bias", "both"], default="both",
                   help="where the error goes: the initial potential, the bias, or half each (default)")
    x.add_argument("--dataset", default=None, help="calibration images: this data set's training split (default: "
                                                  "the checkpoint's)")
    x.add_argument("--data", metavar="PATH", help="local data directory of --dataset")
    x.add_argument("--standard", action="store_true",
                   help="stock NIR nodes only (ResNet/VGG without masking); fails otherwise")
    x.set_defaults(func=run)

    i = sub.add_parser("inspect", help="nodes, edges, shapes and parameters of a NIR file, and each neuron "
                                       "as read (per step)")
    i.add_argument("graph")
    add_reading_options(i)
    i.set_defaults(func=inspect)


def run(args) -> int:
    from ..atomic import check_outputs
    from ..export.lower import to_nir
    from ..ir.io import write_graph
    from ..ir.nodes import SynapseGate
    from ..models import checkpoint
    check_outputs({"--output": args.output}, [args.checkpoint, args.data])
    model, ck = checkpoint.load(args.checkpoint, **mask_overrides(args))
    graph = to_nir(model, seed=args.seed, standard=args.standard, layernorm=args.layernorm,
                   spike_levels=args.spike_levels)
    if args.calibrate is not None:
        graph = _calibrated(graph, model, ck, args)
    write_graph(graph, args.output)
    gates = sum(1 for n in graph.nodes.values() if isinstance(n, SynapseGate))
    graded = f", graded spikes 0..{args.spike_levels}" if args.spike_levels > 1 else ""
    print(f"wrote {args.output}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
          f"{gates} gated synapse groups (seed {args.seed}){graded}")
    return 0


def _calibrated(graph, model, ck: dict, args):
    """The graph calibrated on the first N images of the training split (compare/calibrate.py)."""
    from ..data import datasets
    from ..errors import UserError
    from ..compare.calibrate import calibrate
    from ..export.lower import to_nir
    from ..simulate.evaluate import stack_images
    if args.standard:
        raise UserError("--calibrate changes our neurons' potentials and biases: not with --standard")
    name = args.dataset or ck.get("meta", {}).get("dataset")
    if name is None:
        raise UserError("--calibrate needs --dataset: the checkpoint does not say what it was trained on")
    train = datasets.load(name, "train", model.config.img_size, args.data)
    x, _ = stack_images(train, args.calibrate)
    reference = to_nir(model, seed=args.seed, layernorm=args.layernorm, spike_levels=model.config.levels)
    return calibrate(graph, reference, x, args.calibrate_steps, args.calibrate_method)


def inspect(args) -> int:
    from ..ir.inspect import describe
    from ..ir.io import read_graph
    print(describe(read_graph(args.graph, **reading(args))))
    return 0
