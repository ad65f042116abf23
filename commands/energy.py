"""`mst energy`: events, energy and accuracy per inference with either backend, optionally for a
sweep of masking ratios; energy.json and PNG plots (compare/energy_report.py). Under torchrun the
reference backend's images are shared out over the ranks; rank 0 prints and writes."""
from __future__ import annotations

from ..errors import UserError
from .common import add_simulator_options, add_lava_options, add_run_options, graph_and_images, number, ratio_list


def add_parser(sub) -> None:
    en = sub.add_parser("energy", help="events, energy (Loihi 1, 45 nm) and accuracy per inference, "
                                       "optionally for a sweep of masking ratios; JSON and plots")
    add_run_options(en, None)
    add_simulator_options(en)
    en.add_argument("--backend", choices=["reference", "lava"], default="reference",
                    help="where the events come from (lava: 8 images unless -n)")
    en.add_argument("--sweep", metavar="P1,P2,..", help="re-gate the graph at each ratio (weights unchanged)")
    en.add_argument("--raster", metavar="NODE", help="neuron node for the spike raster (default: the first)")
    en.add_argument("--ann", metavar="CHECKPOINT", help="the ANN the graph was exported from: its accuracy on the "
                    "same images, and the smallest priced T (1, 2, 4, .., T) within --tolerance of it")
    en.add_argument("--tolerance", type=number, default=0.5, help="accuracy points below the ANN's that count "
                    "as reaching it (default 0.5)")
    en.add_argument("--out", default="runs/energy", help="directory for energy.json and the plots")
    add_lava_options(en, None)
    en.set_defaults(func=run)


def run(args) -> int:
    import pathlib
    from ..atomic import check_outputs, output_folder
    from ..compare.energy_report import REPORT_FILES, energy_report, run_line, write_report
    from ..data import datasets
    from ..distributed import setup
    output_folder(args.out, "--out")
    check_outputs({f"--out ({name})": pathlib.Path(args.out) / name for name in REPORT_FILES}, [args.graph, args.data, args.inputs, args.labels, args.ann])
    ratios = None
    if args.sweep is not None:
        ratios = ratio_list(args.sweep)
        if not ratios:
            raise UserError("--sweep needs at least one ratio")
    if args.images is None and args.backend == "lava":
        args.images = 8
    graph, data = graph_and_images(args)
    if not getattr(data, "labelled", True):
        raise UserError("mst energy reports accuracy with the energy: give --inputs labels (an HDF5 'labels' "
                        "dataset or --labels FILE.npy)")
    if not 0 <= args.tolerance <= 100:
        raise UserError(f"--tolerance is in accuracy points, 0..100; got {args.tolerance:g}")
    ann_accuracy = None
    if args.ann is not None:
        from ..models import checkpoint
        from ..models.evaluate import ann_accuracy as baseline
        ann_accuracy = baseline(checkpoint.load(args.ann)[0], data, f"--ann {args.ann}")
    ranks = setup(args.device)
    try:
        report, spikes = energy_report(
            graph, data, args.steps, source=str(args.graph), dataset=args.dataset, fixed_point=args.fixed_point,
            backend=args.backend, ratios=ratios, raster=args.raster, timeout=args.timeout,
            progress=not args.no_progress, chunk=args.chunk, ranks=ranks, ann_accuracy=ann_accuracy,
            tolerance=args.tolerance / 100, classes=datasets.classes(args.dataset, args.data) if args.dataset else None,
            on_run=lambda r: ranks.main and print(run_line(r, args.steps), flush=True))
    finally:
        ranks.close()
    if not ranks.main:
        return 0
    ann = report["ann"]
    known = "" if ann_accuracy is None else f"{100 * ann_accuracy:.2f}% on these images, "
    print(f"ANN of the same network: {known}{ann['macs']:,} MACs, {ann['energy_uJ']['45nm-fp32']:.2f} uJ at 45 nm fp32, "
          f"{ann['energy_uJ']['45nm-int8']:.2f} uJ at int8")
    files = write_report(report, args.out, spikes)
    print(f"report -> {files[0]}; plots: {', '.join(str(p) for p in files[1:])}")
    return 0
