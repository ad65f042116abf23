"""`mst`: the command line. Each subcommand parses its options here and calls one library function.

Bad input raises UserError anywhere below; it is printed as one line and the exit status is 2.
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        raise UserError(f"{self.prog}: {message}")


def _ratio_list(text: str) -> list[float]:
    from .models.rsm import check_ratio
    return [check_ratio(v) for v in text.split(",") if v.strip()]


def _add_mask_options(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--mask", metavar="P", help="RSM ratio p in [0, 1) for every masked site")
    g.add_argument("--mask-per-block", metavar="P1,P2,..", help="one ratio per block (MST) or layer")


def _mask_overrides(args) -> dict:
    from .models.rsm import check_ratio
    if args.mask is not None:
        return {"mask": check_ratio(args.mask)}
    if args.mask_per_block is not None:
        return {"mask": _ratio_list(args.mask_per_block)}
    return {}


def cmd_train(args) -> int:
    from .models.train import TrainArgs, train
    overrides = _mask_overrides(args)
    if args.attention:
        overrides["attention"] = args.attention
    if args.mask_sites:
        overrides["mask_sites"] = [s for s in args.mask_sites.split(",") if s]
    if args.timesteps is not None:
        overrides["timesteps"] = args.timesteps
    a = TrainArgs(model=args.model, dataset=args.dataset, data=args.data, out=args.out,
                  overrides=overrides, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                  label_smoothing=args.label_smoothing, clip_grad=args.clip_grad, seed=args.seed,
                  device=args.device, progress=not args.no_progress)
    r = train(a)
    if r.get("rank", 0) == 0:
        print(f"{r['accuracy_label']} top-1 accuracy on {a.dataset} test: {100 * r['accuracy']:.2f}%  -> {a.out}")
    return 0


def cmd_eval(args) -> int:
    from .models import checkpoint, datasets
    from .models.evaluate import accuracy
    model, ck = checkpoint.load(args.checkpoint, **_mask_overrides(args))
    name = args.dataset or ck["meta"].get("dataset", "digits")
    data = datasets.load(name, "test", model.config.img_size, args.data)
    from .models.registry import accuracy_label, accuracy_name
    acc = accuracy(model, data, batch_size=args.batch_size, seed=args.seed)
    print(f"{accuracy_label(model.config)} top-1 accuracy on {name} test ({len(data)} images): {100 * acc:.2f}%")
    if args.json:
        from .atomic import write_text
        write_text(args.json, json.dumps({"dataset": name, "images": len(data),
                                          accuracy_name(model.config): acc}, indent=2))
    return 0


def cmd_export(args) -> int:
    from .export.io import write_graph
    from .export.lower import to_nir
    from .models import checkpoint
    model, _ = checkpoint.load(args.checkpoint, **_mask_overrides(args))
    graph = to_nir(model, seed=args.seed, standard=args.standard)
    write_graph(graph, args.output)
    gates = sum(1 for n in graph.nodes.values() if type(n).__name__ == "SynapseGate")
    print(f"wrote {args.output}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
          f"{gates} gated synapse groups (seed {args.seed})")
    return 0


def cmd_inspect(args) -> int:
    from .export.inspect import describe
    from .export.io import read_graph
    print(describe(read_graph(args.graph)))
    return 0


def cmd_simulate(args) -> int:
    from .simulate.run import simulate_command
    simulate_command(args)
    return 0


def cmd_lava(args) -> int:
    from .backends.lava.command import lava_command
    lava_command(args)
    return 0


def cmd_parity(args) -> int:
    from .simulate.parity import parity_command
    return 0 if parity_command(args)["passed"] else 1


def _add_run_options(p: argparse.ArgumentParser, default_images) -> None:
    p.add_argument("graph")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--data", metavar="PATH")
    p.add_argument("-T", "--steps", type=int, default=32)
    p.add_argument("-n", "--images", type=int, default=default_images, help="first N test images")
    p.add_argument("--fixed-point", action="store_true",
                   help="Loihi-style integer arithmetic (docs/fixed-point.md) instead of floating point")
    p.add_argument("--no-progress", action="store_true")


def cmd_energy(args) -> int:
    from .simulate.energy_report import energy_command
    if args.sweep is not None:
        args.sweep = _ratio_list(args.sweep)
        if not args.sweep:
            raise UserError("--sweep needs at least one ratio")
    energy_command(args)
    return 0


def cmd_resources(args) -> int:
    from .backends.resources import resources_command
    resources_command(args)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo
    run_demo(args.out, epochs=args.epochs, retrain=args.retrain)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="mst", description="Masked Spiking Transformers: train, export to NIR, "
                                        "simulate, run in Lava, report energy.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train a QCFS ANN (mst, resnet, vgg) or a directly trained SNN "
                                     "(saformer), with Random Spike Masking")
    t.add_argument("--model", default="mst-tiny", help="preset: mst-tiny, mst-t, resnet18, vgg16, vgg-tiny, "
                                                        "saformer-tiny, saformer-cifar")
    t.add_argument("--dataset", default="digits", help="digits (built in), cifar10, cifar100, imagenet")
    t.add_argument("--data", metavar="PATH", help="local data directory (not needed for digits)")
    _add_mask_options(t)
    t.add_argument("--mask-sites", metavar="S1,S2", help="MST / SAFormer sites among q,k,attn,mlp "
                                                        "(default q,k,attn)")
    t.add_argument("--attention", choices=["softmax", "spiking"], help="MST attention mode")
    t.add_argument("--timesteps", type=int, metavar="T", help="SAFormer: time steps per image (default 4)")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--batch-size", type=int, default=64, help="global batch (split across ranks)")
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--weight-decay", type=float, default=0.05)
    t.add_argument("--warmup-epochs", type=float, default=3.0)
    t.add_argument("--label-smoothing", type=float, default=0.1)
    t.add_argument("--clip-grad", type=float, default=5.0)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--out", default="ckpt.pt", help="checkpoint path (written atomically)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="top-1 accuracy of a checkpoint (QCFS: the ANN; SAFormer: the SNN)")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", help="default: the data set it was trained on")
    e.add_argument("--data", metavar="PATH")
    _add_mask_options(e)
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--seed", type=int, default=0, help="seed of the RSM masks")
    e.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export", help="convert a checkpoint to a spiking NIR graph (HDF5)")
    x.add_argument("checkpoint")
    x.add_argument("-o", "--output", required=True, help="NIR file to write (atomically)")
    _add_mask_options(x)
    x.add_argument("--seed", type=int, default=0, help="seed of the gating random stream")
    x.add_argument("--standard", action="store_true",
                   help="stock NIR nodes only (ResNet/VGG without masking); fails otherwise")
    x.set_defaults(func=cmd_export)

    i = sub.add_parser("inspect", help="nodes, edges, shapes and parameters of a NIR file")
    i.add_argument("graph")
    i.set_defaults(func=cmd_inspect)

    s = sub.add_parser("simulate", help="reference simulator: accuracy vs T, events, spikes")
    s.add_argument("graph")
    s.add_argument("--dataset", default="digits")
    s.add_argument("--data", metavar="PATH")
    s.add_argument("-T", "--steps", type=int, default=64)
    s.add_argument("-n", "--images", type=int, default=None, help="first N test images (default all)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    s.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    s.add_argument("--fixed-point", action="store_true",
                   help="Loihi-style integer arithmetic, as Lava's bit-accurate models (docs/fixed-point.md)")
    s.add_argument("--json", metavar="FILE", help="result file (default runs/simulate/<graph>.json)")
    s.add_argument("--record", metavar="NODES", help="record spikes of these nodes (comma list, or all)")
    s.add_argument("--spikes-out", metavar="FILE", help="HDF5 file for recorded spikes")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_simulate)

    lv = sub.add_parser("lava", help="run a NIR graph in Lava's Loihi 2 simulation (float or fixed point)")
    _add_run_options(lv, 8)
    lv.add_argument("--timeout", type=float, default=900, help="stop the Lava run after this many seconds")
    lv.add_argument("--json", metavar="FILE", help="report file (default runs/lava/<graph>-<mode>.json)")
    lv.set_defaults(func=cmd_lava)

    pa = sub.add_parser("parity", help="spike-by-spike comparison of Lava and the reference simulator")
    _add_run_options(pa, 8)
    pa.add_argument("--timeout", type=float, default=900, help="stop the Lava run after this many seconds")
    pa.add_argument("--json", metavar="FILE", help="report file (default runs/parity/<graph>-<mode>.json)")
    pa.set_defaults(func=cmd_parity)

    en = sub.add_parser("energy", help="events, energy (Loihi 1, 45 nm) and accuracy per inference, "
                                       "optionally for a sweep of masking ratios; JSON and plots")
    _add_run_options(en, None)
    en.add_argument("--backend", choices=["reference", "lava"], default="reference",
                    help="where the events come from (lava: 8 images unless -n)")
    en.add_argument("--sweep", metavar="P1,P2,..", help="re-gate the graph at each ratio (weights unchanged)")
    en.add_argument("--raster", metavar="NODE", help="neuron node for the spike raster (default: the first)")
    en.add_argument("--out", default="runs/energy", help="directory for energy.json and the plots")
    en.add_argument("--timeout", type=float, default=900, help="Lava backend: stop a run after this many seconds")
    en.set_defaults(func=cmd_energy)

    rs = sub.add_parser("resources", help="map a NIR graph onto Loihi-style cores: cores per layer, "
                                          "what does not fit")
    rs.add_argument("graph")
    rs.add_argument("--profile", choices=["loihi2", "loihi1"], default="loihi2")
    rs.add_argument("--json", metavar="FILE", help="also write the mapping as JSON")
    rs.set_defaults(func=cmd_resources)

    d = sub.add_parser("demo", help="the end-to-end demo on the built-in digits data")
    d.add_argument("--out", default="runs/demo", help="output directory")
    d.add_argument("--epochs", type=int, default=None, help="training epochs (default: the demo's)")
    d.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
