"""Options and checks that several commands share: masking ratios, the run options of commands
that simulate a graph on a data set, and loading that graph and its images."""
from __future__ import annotations

import argparse
import math
import pathlib

from ..errors import UserError
from ..ir.producers import PRODUCERS, RESETS
from ..loihi.widths import PAYLOAD_BITS
from ..machine import DEVICES


def _checked(convert, kind: str, ok, rule: str):
    """An argparse type: convert(text), which must be `kind` and satisfy `ok` (`rule` says how)."""
    def parse(text: str):
        try:
            v = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{v} is not {rule}")
        return v
    return parse


count = _checked(int, "a whole number", lambda v: v >= 1, ">= 1")                 # images, steps, epochs
number = _checked(float, "a number", math.isfinite, "a finite number")            # no nan, no inf
seed = _checked(int, "a whole number", lambda v: 0 <= v < 2 ** 32, "in [0, 2^32)")  # numpy and torch both take it
spike_levels = _checked(int, "a whole number", lambda v: 1 <= v < 1 << PAYLOAD_BITS,
                        f"in 1..{(1 << PAYLOAD_BITS) - 1} (payloads of {PAYLOAD_BITS} bits, loihi/widths.py)")
seconds = _checked(float, "a number", lambda v: math.isfinite(v) and v > 0, "a positive finite number")


def ratio_list(text: str) -> list[float]:
    from ..ir.ratio import check_ratio
    return [check_ratio(v) for v in text.split(",") if v.strip()]


def add_mask_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--mask", metavar="P", help="RSM ratio p in [0, 1) for every masked site")
    g.add_argument("--mask-per-block", metavar="P1,P2,..", help="one ratio per block (MST) or layer")


def mask_overrides(args) -> dict:
    from ..ir.ratio import check_ratio
    if args.mask is not None:
        return {"mask": check_ratio(args.mask)}
    if args.mask_per_block is not None:
        return {"mask": ratio_list(args.mask_per_block)}
    return {}


def add_run_options(p: argparse.ArgumentParser, default_images, default_steps: int = 32) -> None:
    """graph, its inputs (a data set or a file), steps, images, time base and arithmetic of a
    command that runs a graph."""
    p.add_argument("graph")
    p.add_argument("--dataset", default=None,
                   help="digits (default, built in), fashion-mnist (Debian's package, `make data`), mnist, cifar10, "
                        "cifar100, imagenet, nmnist, dvsgesture, cifar10dvs, folder (your own images: --data DIR "
                        "with train/<class>/ and val/ or test/)")
    p.add_argument("--data", metavar="PATH")
    p.add_argument("--inputs", metavar="FILE",
                   help="inputs instead of a data set: .npy or .h5 ('inputs', 'labels'), static (samples, ...) "
                        "or one frame per step (steps, samples, ...) (data/inputs.py)")
    p.add_argument("--labels", metavar="FILE", help="labels (samples,) of .npy --inputs")
    p.add_argument("-T", "--steps", type=count, default=None,
                   help=f"time steps per sample (default {default_steps}; time-varying --inputs: their steps)")
    p.add_argument("-n", "--images", type=count, default=default_images, help="first N test images (samples)")
    add_reading_options(p)
    p.add_argument("--fixed-point", action="store_true",
                   help="Loihi-style integer arithmetic, as Lava's bit-accurate models (docs/fixed-point.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(default_steps=default_steps)


def add_reading_options(p: argparse.ArgumentParser) -> None:
    """How a graph file is read: its time step and its producer's conventions (ir/producers.py)."""
    p.add_argument("--dt", type=seconds, default=None,
                   help="the graph's time step in its own unit (default: the file's metadata dt, else 1, time "
                        "constants in steps; with --from: the step that framework exported with)")
    p.add_argument("--from", dest="producer", choices=PRODUCERS, default=None,
                   help="the framework that wrote the file: read it with that exporter's conventions "
                        "(its dt, resets, thresholds; docs/interop.md)")
    p.add_argument("--reset", choices=RESETS, default=None,
                   help="with --from snntorch: the network's reset mechanism (default subtract, snnTorch's)")


def reading(args) -> dict:
    """read_graph's keywords from the reading options."""
    return {"dt": args.dt, "producer": args.producer, "reset": args.reset}


def add_simulator_options(p: argparse.ArgumentParser) -> None:
    """Where the reference simulator runs and how many steps at a time (memory grows with the
    chunk, not with -T)."""
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="the reference simulator's device (auto: CUDA when there is one)")
    p.add_argument("--chunk", metavar="K", type=count, default=None,
                   help="simulate K steps at a time, carrying state (default: as many as fit in memory)")


def add_lava_options(p: argparse.ArgumentParser, report: str | None) -> None:
    """The Lava run's time limit and, where the command writes one, its report file."""
    p.add_argument("--timeout", type=number, default=900, help="stop a Lava run after this many seconds")
    if report:
        p.add_argument("--json", metavar="FILE", help=f"report file (default runs/{report}/<graph>-<mode>.json)")


def report_path(args, kind: str) -> str:
    """The JSON report of a Lava command (--json, or runs/<kind>/<graph>-<mode>.json), checked
    before any work."""
    from ..atomic import check_outputs
    mode = "fixed_point" if args.fixed_point else "float"
    path = args.json or f"runs/{kind}/{pathlib.Path(args.graph).stem}-{mode}.json"
    check_outputs({"--json": path}, [args.graph, args.data, args.inputs, args.labels])
    return path


def graph_and_images(args, lava: bool = False):
    """(graph, samples) of a command with run options: the graph is read (time in steps of
    --dt; for Lava, checked) before any data is loaded; the samples are --inputs or the data set's
    test split (api.samples). Sets args.steps (a time-varying input file's steps unless -T says
    otherwise: then an error) and args.dataset."""
    from ..api import samples
    from ..ir.io import read_graph
    graph = read_graph(args.graph, **reading(args))
    if lava:
        from ..backends.lava_nc.netx_job import is_netx_file
        from ..backends.lava_nc.network import SUPPORTED
        from ..ir.topology import check_supported
        if not is_netx_file(args.graph):                 # a netx file runs in netx's own processes
            check_supported(graph, SUPPORTED, "the Lava backend")
    if args.inputs is None:
        args.dataset = args.dataset or "digits"
    elif args.dataset is not None or args.data is not None:
        raise UserError("--inputs replaces --dataset and --data: give one or the other")
    data, args.steps = samples(graph, args.inputs or args.dataset, labels=args.labels, steps=args.steps,
                               n=args.images, data=args.data, default_steps=args.default_steps)
    return graph, data


def lava_images(args):
    """(graph, samples as one batch, labels, whether they are labels) for a command that runs
    args.graph in Lava (labels -1 where the inputs have none)."""
    from ..simulate.evaluate import stack_images
    graph, data = graph_and_images(args, lava=True)
    x, y = stack_images(data)
    return graph, x, y, getattr(data, "labelled", True)
