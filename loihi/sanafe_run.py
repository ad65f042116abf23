"""SANA-FE on the files loihi/sanafe.py writes; prints one JSON object. Run by SANA-FE's own
interpreter in a process of its own (SANA-FE is GPL-3.0; nothing of mstdeploy imports it):
    python sanafe_run.py arch.yaml net.yaml STEPS [WINDOW [THREADS]]
Totals (energy, time, events, spikes per layer) are over the first WINDOW steps (default STEPS)."""
import collections, contextlib, json, resource, sys, time
sys.path.pop(0)                          # this folder holds mstdeploy's sanafe.py: import SANA-FE's own
import sanafe  # noqa: E402

arch_path, net_path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
window = int(sys.argv[4]) if len(sys.argv) > 4 else steps
threads = int(sys.argv[5]) if len(sys.argv) > 5 else 1
t0 = time.time()
arch = sanafe.load_arch(arch_path)
net = sanafe.load_net(net_path, arch)
chip = sanafe.SpikingChip(arch)
chip.load(net)
t1 = time.time()
with contextlib.redirect_stdout(sys.stderr):                     # SANA-FE's progress line
    r = chip.sim(steps, spike_trace=True, perf_trace=True, processing_threads=threads)
t2 = time.time()
fired = collections.Counter()                                 # layer -> spikes in the window
for step in r["spike_trace"][:window]:
    for n in step:
        fired[getattr(n, "group_name", None) or str(n).split(".")[0]] += 1
perf = {k: list(v) for k, v in (r["perf_trace"] or {}).items()}
w = lambda key: sum(perf[key][:window])
energy = {u: w(f"{u}_energy") for u in ("synapse", "dendrite", "soma", "network")}
energy["total"] = w("total_energy")
sim_time = w("sim_time")
print(json.dumps(dict(
    steps=steps, window=window, energy_j=energy, sim_time_s=sim_time, step_time_s=sim_time / window,
    step_time_max_s=max(perf["sim_time"][:window]), fps=1.0 / sim_time,
    synaptic_events=w("spikes"), neurons_fired=w("fired"), fired_per_layer=dict(fired),
    wall_load_s=t1 - t0, wall_sim_s=t2 - t1,
    peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
