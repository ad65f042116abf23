"""`mst export` (checkpoint -> NIR file) and `mst inspect` (what a NIR file holds)."""
from __future__ import annotations

from ..errors import UserError
from .common import add_mask_options, add_reading_options, count, mask_overrides, reading, seed, spike_levels


def add_parser(sub) -> None:
    x = sub.add_parser("export", help="convert a checkpoint to a spiking NIR graph (HDF5)")
    x.add_argument("checkpoint")
    x.add_argument("-o", "--output", required=True, help="NIR file to write (atomically); a .net name writes a lava-dl "
                                                           "netx file (loihi/netx.py)")
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
                   help="calibrate the neurons for few steps on N training images (docs/few-steps.md; with --reset "
                        "zero: each layer's threshold scale): layer by "
                        "layer, the mean error against the ANN moves into initial potentials or biases")
    x.add_argument("--calibrate-steps", metavar="T", type=count, default=4, help="the T to calibrate for (default 4)")
    x.add_argument("--calibrate-method", choices=["potential", "bias", "both"], default="both",
                   help="where the error goes: the initial potential, the bias, or half each (default)")
    x.add_argument("--dataset", default=None, help="calibration images: this data set's training split (default: "
                                                  "the checkpoint's)")
    x.add_argument("--data", metavar="PATH", help="local data directory of --dataset")
    x.add_argument("--reset", choices=["subtract", "zero"], default="subtract",
                   help="the converted IF neurons' reset: subtract (the exact conversion; default) or zero (stock IF "
                        "neurons, which netx's LIF runs: needed for -o x.net; accuracy drops, measure it)")
    x.add_argument("--standard", action="store_true",
                   help="stock NIR nodes only (ResNet/VGG without masking); fails otherwise")
    x.set_defaults(func=run)

    i = sub.add_parser("inspect", help="nodes, edges, shapes and parameters of a NIR file, and each neuron "
                                       "as read (per step)")
    i.add_argument("graph")
    add_reading_options(i)
    i.set_defaults(func=inspect)


def run(args) -> int:
    from .. import api
    from ..atomic import check_outputs
    from ..ir.nodes import SynapseGate
    from ..models import checkpoint
    check_outputs({"--output": args.output}, [args.checkpoint, args.data])
    model, ck = checkpoint.load(args.checkpoint, **mask_overrides(args))
    dataset = args.dataset or ck.get("meta", {}).get("dataset")
    if args.calibrate is not None and dataset is None:
        raise UserError("--calibrate needs --dataset: the checkpoint does not say what it was trained on")
    graph = api.export(model, seed=args.seed, standard=args.standard, layernorm=args.layernorm, reset=args.reset,
                       spike_levels=args.spike_levels, calibrate=args.calibrate, calibrate_steps=args.calibrate_steps,
                       calibrate_method=args.calibrate_method, dataset=dataset, data=args.data)
    api.write(graph, args.output)
    gates = sum(1 for n in graph.nodes.values() if isinstance(n, SynapseGate))
    graded = f", graded spikes 0..{args.spike_levels}" if args.spike_levels > 1 else ""
    print(f"wrote {args.output}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
          f"{gates} gated synapse groups (seed {args.seed}){graded}")
    return 0


def inspect(args) -> int:
    from .. import api
    from ..ir.inspect import describe
    print(describe(api.read(args.graph, **reading(args))))
    return 0
