"""`mst plan`: the graph on Loihi chips with time: cores, step time, latency, throughput, dynamic
and static energy per inference, EDP (loihi/chip.py; activity from a reference run)."""
from __future__ import annotations

import json
from pathlib import Path

from .common import add_run_options, graph_and_images


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="the graph on Loihi chips: cores with weight sharing, the busiest core, "
                                    "step time, latency, throughput, dynamic and static energy, EDP")
    add_run_options(p, default_images=8)
    p.add_argument("--profile", choices=["loihi2", "loihi1"], default="loihi2")
    p.add_argument("--json", metavar="FILE", help="also write the plan as JSON")
    p.add_argument("--plot", metavar="FILE", help="also draw cores and each core's time per step per layer (PNG)")
    p.add_argument("--sanafe", metavar="PYTHON", help="also run SANA-FE (a Python that has it: make sanafe, "
                                                      ".venv/sanafe/bin/python) on the first input, beside the plan")
    p.add_argument("--placed", metavar="FILE", help="also write the graph as placed, fan-in split on relay "
                                                    "neurons (NIR; it simulates as the graph does)")
    p.set_defaults(func=run)


def _si(x: float | None, unit: str) -> str:
    if x is None:
        return "not priced"
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n")):
        if abs(x) >= scale or scale == 1e-9:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"


def run(args) -> int:
    from .. import api
    from ..atomic import check_outputs, write_text
    check_outputs({"--json": args.json, "--plot": args.plot, "--placed": args.placed}, [args.graph])
    graph, data = graph_and_images(args)
    rep = api.plan(graph, data, args.steps, n=None, profile=args.profile, fixed_point=args.fixed_point,
                   progress=not args.no_progress, sanafe=args.sanafe)
    w = max([len(r["layer"]) for r in rep["layers"]] + [5])
    print(f"{args.graph} on {rep['profile']} ({rep['source']})")
    print(f"{'layer':{w}s}  {'neurons':>8s}  {'weights':>9s}  {'cores':>5s}  {'fan-in':>6s}  {'events/step':>11s}  "
          f"{'core time':>9s}")
    for r in rep["layers"]:
        print(f"{r['layer']:{w}s}  {r['neurons']:8d}  {r['weights']:9d}  {r['cores']:5d}  {r['fan_in']:6d}  "
              f"{r['synaptic_events']:11.0f}  {_si(r['core_seconds'], 's'):>9s}")
    relays = [r for r in rep["layers"] if r["relay_of"]]
    e = rep["energy_joules"]
    print(f"total: {rep['cores']} cores, {rep['chips']} chip(s); every layer within its cores' neurons, weights "
          f"and inputs" + (f"; {len(relays)} relay layers carry the partial sums of "
                           f"{', '.join(sorted({r['relay_of'] for r in relays}))}" if relays else ""))
    print(f"step {_si(rep['step_seconds'], 's')} (busiest: {rep['bottleneck']}), depth {rep['depth']} steps, "
          f"T = {rep['steps']}: latency {_si(rep['latency_seconds'], 's')}, {rep['throughput_per_second']:.4g} "
          f"inferences/s pipelined")
    print(f"energy per inference: dynamic {_si(e['dynamic'], 'J')}, static {_si(e['static'], 'J')}, "
          f"total {_si(e['total'], 'J')}; EDP {_si(rep['edp_joule_seconds'], 'J s')}")
    sf = rep.get("sanafe")
    if sf:
        print(f"SANA-FE (Loihi 1, first input): {sf['cores']} cores, step {_si(sf['step_seconds'], 's')} (busiest step "
              f"{_si(sf['step_seconds_max'], 's')}), {sf['throughput_per_second']:.4g} inferences/s, dynamic "
              f"{_si(sf['dynamic_joules'], 'J')} (no static power)")
    placed = rep["placed"]
    print(f"placed: {len(placed['stock'])} nodes as stock Lava processes, {len(placed['microcode'])} as neuron "
          f"microcode, {len(placed['host'])} on the host ({rep['host_bytes_per_step']:,} bytes a step between "
          f"host and chip)")
    if args.json:
        write_text(args.json, json.dumps(rep, indent=2))
        print(f"plan -> {args.json}")
    if args.placed:
        api.write(api.split(graph, args.profile), args.placed)
        print(f"placed graph -> {args.placed}")
    if args.plot:
        from ..compare.plots import plan_plot
        print(f"plot -> {plan_plot(rep, Path(args.plot))}")
    return 0
