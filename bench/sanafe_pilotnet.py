"""Intel's PilotNet LIF on Loihi: our plan (loihi2, loihi1), SANA-FE and Intel's measurement side
by side, with the ratios (docs/loihi2-plan.md, "SANA-FE").

    make sanafe && .venv/bin/python bench/sanafe_pilotnet.py [--net network.net] [--frame image.npy]

The network and frame are lava-dl's test files (lava-dl's wheel installs them under
site-packages/tests/lava/lib/dl/netx/gts/pilotnet_lif). SANA-FE runs through `mstdeploy.plan(...,
sanafe=)` (loihi/sanafe.cross_check: T + depth steps, as it delivers each layer's spikes one step
late, its totals over the first T); it needs about 12 GB and a minute here (it builds every
synapse as an object).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

import mstdeploy

ROOT = pathlib.Path(__file__).resolve().parents[1]

GTS = next((ROOT / ".venv" / "lib").glob("python3*/site-packages/tests/lava/lib/dl/netx/gts/pilotnet_lif"), None)
# Intel, PilotNet LIF on one Loihi 2 chip (lava-dl tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb)
INTEL = {"cores": 74, "fps": 408.91, "step_us": 1e6 / (408.91 * 16), "dynamic_mJ": 1.093544, "total_mJ": 1.661103}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default=GTS and GTS / "network.net")
    ap.add_argument("--frame", default=GTS and GTS / "image.npy")
    ap.add_argument("-T", "--steps", type=int, default=16)
    ap.add_argument("--sanafe", default=ROOT / ".venv/sanafe" / "bin" / "python", help="SANA-FE's interpreter")
    ap.add_argument("--json", default="runs/sanafe_pilotnet.json")
    args = ap.parse_args()
    g = mstdeploy.read(args.net)
    frame = np.load(args.frame).transpose(2, 1, 0).astype(np.float32)           # (W, H, C) -> (C, H, W)
    rows, sf = {}, None
    for profile in ("loihi2", "loihi1"):
        p = mstdeploy.plan(g, frame[None], args.steps, profile=profile,
                           sanafe=str(args.sanafe) if profile == "loihi2" else None)
        e = p["energy_joules"]
        rows[f"ours {profile}"] = {"cores": p["cores"], "step_us": p["step_seconds"] * 1e6,
                                   "fps": p["throughput_per_second"], "dynamic_mJ": e["dynamic"] * 1e3,
                                   "total_mJ": None if e["total"] is None or e["static"] is None else e["total"] * 1e3}
        sf = p.get("sanafe") or sf
    rows["SANA-FE (Loihi 1)"] = {"cores": sf["cores"], "step_us": sf["step_seconds"] * 1e6,
                                 "fps": sf["throughput_per_second"], "dynamic_mJ": sf["dynamic_joules"] * 1e3,
                                 "total_mJ": None}
    rows["Intel (Loihi 2)"] = INTEL
    print(f"{'':20s} {'cores':>6s} {'step us':>8s} {'fps':>7s} {'dynamic mJ':>10s} {'total mJ':>9s}")
    for name, r in rows.items():
        total = "-" if r["total_mJ"] is None else f"{r['total_mJ']:.3f}"
        print(f"{name:20s} {r['cores']:6d} {r['step_us']:8.1f} {r['fps']:7.1f} {r['dynamic_mJ']:10.3f} {total:>9s}")
    for name, r in rows.items():
        if name != "Intel (Loihi 2)":
            ratio = {k: (r[k] / INTEL[k] if r[k] is not None else None) for k in INTEL}
            print(f"{name} / Intel: " + ", ".join(f"{k} x{v:.2f}" for k, v in ratio.items() if v is not None))
    print(f"SANA-FE: loaded and simulated in {sf['wall_seconds']:.0f} s, peak {sf['peak_memory_mb'] / 1024:.1f} GiB; "
          "energy by unit (mJ): " + ", ".join(f"{k} {1e3 * v:.3f}" for k, v in sf["energy_joules_by_unit"].items()))
    out = pathlib.Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "sanafe": sf}, indent=1))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
