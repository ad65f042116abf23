"""`mst resources`: the graph's placement on Loihi cores without a run, `mst plan`'s layers and cores
(loihi/resources.py); `mst plan` adds time and energy from a run."""
from __future__ import annotations

import json

from .common import add_reading_options, reading


def add_parser(sub) -> None:
    rs = sub.add_parser("resources", help="the graph on Loihi cores without a run (mst plan's placement): "
                                          "cores per layer, relays, what does not fit")
    rs.add_argument("graph")
    add_reading_options(rs)
    rs.add_argument("--profile", choices=["loihi2", "loihi1"], default="loihi2")
    rs.add_argument("--json", metavar="FILE", help="also write the mapping as JSON")
    rs.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import check_outputs, write_text
    from .. import api
    from ..loihi.chip import CHIPS
    check_outputs({"--json": args.json}, [args.graph])
    rep = api.resources(api.read(args.graph, **reading(args)), args.profile)
    w = max([len(r["layer"]) for r in rep["layers"]] + [5])
    print(f"{args.graph} on {rep['profile']} cores ({rep['source']})")
    print(f"{'layer':{w}s}  {'neurons':>8s}  {'synapses':>10s}  {'weights':>9s}  {'fan-in':>6s}  {'cores':>5s}")
    for r in rep["layers"]:
        flag = "" if r["fits"] else "  DOES NOT FIT"
        relay = f"  (relays to {r['relay_of']})" if r["relay_of"] else ""
        print(f"{r['layer']:{w}s}  {r['neurons']:8d}  {r['synapses']:10d}  {r['weights']:9d}  {r['fan_in']:6d}  "
              f"{r['cores']:5d}{flag}{relay}")
    print(f"total: {rep['neurons']:,} neurons, {rep['synapses']:,} synapses ({rep['weights']:,} distinct weights: "
          f"a kernel once, copied to each core that uses it), {rep['cores']} cores, {rep['chips']} chip(s) of "
          f"{CHIPS[args.profile].cores_per_chip} cores; time and energy: mst plan")
    if rep["beyond_stock_cores"]:
        print("beyond stock Loihi cores:")
        for what, nodes in rep["beyond_stock_cores"].items():
            print(f"  {what} ({len(nodes)} node{'s' if len(nodes) > 1 else ''})")
    pay = rep["spike_payload"]
    print("spikes: binary" if pay is None else
          f"spikes: graded, payloads 0..{pay['levels']} ({pay['bits']} bits of at most {pay['max_bits']}, "
          f"in {pay['message_bits']}-bit graded messages)")
    print("does not fit: " + ("; ".join(rep["does_not_fit"]) or "nothing (every layer fits its cores)"))
    if args.json:
        write_text(args.json, json.dumps(rep, indent=2))
        print(f"report -> {args.json}")
    return 0
