#!/usr/bin/env python
"""Regenerate the third-party SNN reference fixtures in this folder.

Each framework lives in its OWN virtual environment (their pins conflict: sinabs
and rockpool need nir<=1.0.4, spyx pulls the newest nir).  This one file holds
every stage; run each stage with the interpreter of the venv it names:

  # --- venvs (Python 3.11, CPU only) -------------------------------------------
  python3.11 -m venv /tmp/prodvenv/sinabs
  /tmp/prodvenv/sinabs/bin/pip install torch==2.13.0+cpu   # CPU wheel (PyTorch CPU index, or a local wheel)
  /tmp/prodvenv/sinabs/bin/pip install sinabs==3.1.3 scikit-learn h5py
      # -> resolves nir 1.0.4, nirtorch 2.0.2, samna 0.48.6 (samna installed fine; no --no-deps needed)

  python3.11 -m venv /tmp/prodvenv/rockpool
  /tmp/prodvenv/rockpool/bin/pip install torch==2.13.0+cpu
  /tmp/prodvenv/rockpool/bin/pip install "rockpool[nir]==3.1.0" scikit-learn h5py
      # -> rockpool's [nir] extra pins nir<=1.0.4: nir 1.0.4, nirtorch 2.0.2

  python3.11 -m venv /tmp/prodvenv/spyx
  /tmp/prodvenv/spyx/bin/pip install spyx==1.0.0 "jax[cpu]==0.10.2" scikit-learn h5py
      # -> flax 0.12.8, optax 0.2.8, nir 1.0.8 (no torch in this venv)

  # --- stages (in this order; PYTHONHASHSEED=0 makes the torch exporters' edge order,
  #     and so the .nir bytes, reproducible -- nirtorch collects edges in a set) ------
  export PYTHONHASHSEED=0
  /tmp/prodvenv/sinabs/bin/python   make_fixtures.py data      # digits16.npz (needs torch + sklearn)
  /tmp/prodvenv/sinabs/bin/python   make_fixtures.py sinabs    # sinabs_iaf.*, sinabs_lif.*
  /tmp/prodvenv/rockpool/bin/python make_fixtures.py rockpool  # rockpool_lif.*
  /tmp/prodvenv/spyx/bin/python     make_fixtures.py spyx      # spyx_lif.*, spyx_if.*
  <any python with numpy + h5py>    make_fixtures.py check     # numpy replay of every .nir file

The data stage writes the 16x16 digits array to $DIGITS16 (default
/tmp/prodvenv/digits16.npz) so that the spyx venv (no torch) gets the SAME array;
each <case>.npz also stores its 64 `inputs` and `check` asserts they are identical.

Every .nir file is written exactly as the framework's own exporter returns it, with
that venv's nir.write.  `check` reads the files with h5py only (rockpool's file is
not loadable by nir.read, see README.md) and replays each framework's step rule in
float32 numpy using only the constants found in the file.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DIGITS16 = Path(os.environ.get("DIGITS16", "/tmp/prodvenv/digits16.npz"))
T = 32  # time steps, input = image as constant current at every step
N_TRAIN = 1400  # train on samples [:1400], accuracy on [1400:]
REC0, NREC = 1400, 64  # recorded samples 1400..1463
SEED = 0
CASES = ["rockpool_lif", "sinabs_iaf", "sinabs_lif", "spyx_lif", "spyx_if"]

RP_INIT_SCALE, RP_OUT_BIAS, RP_LOGIT_SCALE = 0.05, 0.05, 0.03  # rockpool training knobs
SINABS_LIF_TAU = 10.0  # sinabs LIF has no default tau_mem; everything else default


# Discrete step rule of each framework's forward and what its exporter writes
# (file:line in the pinned installed versions; stored in every <case>.json).
STEP_RULES = {
    "sinabs_iaf": {
        "forward": "i = I_t; v = v + i; k = (v > 0) * trunc(v / thr)  [== floor for v>0, spikes when v >= thr, "
        "several per step]; v = v - k*thr; no min_v_mem clamp (default None)",
        "source": "sinabs/layers/functional/lif.py:19-44, sinabs/layers/iaf.py:49-78 (tau_mem=inf, alpha=1, "
        "norm_input=False), sinabs/activation/spike_generation.py:39-41 (MultiSpike), "
        "sinabs/activation/reset_mechanism.py:40-45 (MembraneSubtract)",
        "exporter": "sinabs/nir.py:157-163: nir.IF(r=ones(64), v_threshold=thr broadcast); nir 1.0.4 IF has only "
        "r, v_threshold (no v_reset); no dt anywhere; Input/Output shapes [256]/[10] (ignore_dims=[0], nir.py:246-252)",
    },
    "sinabs_lif": {
        "forward": "a = exp(-1/tau_mem); v = a*v + (1-a)*I_t  [norm_input=True default]; k = (v > 0) * trunc(v/thr); "
        "v = v - k*thr; no min_v_mem clamp",
        "source": "sinabs/layers/lif.py:61-121, sinabs/layers/functional/lif.py:19-44, spike_generation.py:39-41, "
        "reset_mechanism.py:40-45",
        "exporter": "sinabs/nir.py:164-171: nir.LIF(tau=tau_mem (SCALAR, shape ()), v_threshold scalar, v_leak=0, r=1): "
        "the (1-a) input factor of norm_input is NOT encoded; tau is in steps (dt=1 implied, not written)",
    },
    "rockpool_lif": {
        "forward": "a = exp(-dt/tau_mem), b = exp(-dt/tau_syn); isyn = isyn + I_t; v = a*v; isyn = b*isyn; "
        "v = v + isyn + noise(0) + bias(0); k = (v >= thr) * floor(v/thr) clamped to max_spikes_per_dt=2**16; "
        "v = v - k*thr",
        "source": "rockpool/nn/modules/torch/lif_torch.py:684-709 (loop), 43-46 (StepPWL), 128-129 (tau_to_decay), "
        "150-175 (defaults dt=1e-3, StepPWL, max_spikes_per_dt=2**16), 285-311 (tau 20e-3), 387-403 (bias 0, thr 1)",
        "exporter": "rockpool/nn/modules/torch/nir.py:252-275: nir.CubaLIF(tau_syn, tau_mem (seconds), "
        "r = tau_mem*exp(-dt/tau_mem)/dt, v_leak = zeros (neuron bias DROPPED), v_threshold), w_in=1 added by nir; "
        "dt NOT written; Input shape [1,256] (batch axis, sample_data zeros((1,256)) and no ignore_dims, "
        "nir.py:319-325), Output shape [1,1,10]",
    },
    "spyx_lif": {
        "forward": "s = heaviside(v - thr) (strict v > thr) on the PREVIOUS step's v; "
        "v = clip(beta,0,1)*v + I_t - s*thr (subtract after decay, one spike max)",
        "source": "spyx/nn.py:209-217 (LIF.__call__), 199-205 (beta default truncnorm(0.25)+0.5 per neuron), "
        "spyx/axn.py:25-27 (heaviside x > 0), 150-173 (superspike)",
        "exporter": "spyx/nir.py:587-594: nir.LIF(tau = dt/(1-beta), v_threshold, v_leak=0, r = beta (UNclipped)), "
        "dt=1 default (nir.py:474); nir 1.0.8 adds v_reset=0 (whose 1.0.8 meaning is reset-to-0, not subtract)",
    },
    "spyx_if": {
        "forward": "s = heaviside(v - thr) on the PREVIOUS v; v = v + I_t - s*thr",
        "source": "spyx/nn.py:162-169 (IF.__call__), spyx/axn.py:25-27",
        "exporter": "spyx/nir.py:579-585: nir.IF(r=ones, v_threshold); nir 1.0.8 adds v_reset=0",
    },
}


# ----------------------------------------------------------------------------- data
def make_digits16():
    """The exact preprocessing of the brief (bilinear, torch, align_corners=False)."""
    import torch
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = torch.nn.functional.interpolate(
        x, size=(16, 16), mode="bilinear", align_corners=False
    ).reshape(len(x), 256)
    return x.numpy().astype(np.float32), d.target.astype(np.int64)


def stage_data():
    x, y = make_digits16()
    DIGITS16.parent.mkdir(parents=True, exist_ok=True)
    np.savez(DIGITS16, x=x, y=y)
    print(f"wrote {DIGITS16}: x {x.shape} {x.dtype}, y {y.shape}")


def load_digits16():
    if DIGITS16.exists():
        z = np.load(DIGITS16)
        return z["x"], z["y"]
    return make_digits16()


def versions(names):
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    return out


def train_torch(name, spikes, params, X, Y, *, lr, epochs, bs, logit_scale=None):
    """The torch frameworks' loop (sinabs, Rockpool): Adam on the Linear layers only, cross-entropy
    of the output spike counts (times `logit_scale`), batches of `bs`; the last epoch's test
    accuracy. `spikes(xb)` -> output spikes (B, T, 10)."""
    import torch

    opt = torch.optim.Adam(params, lr=lr)  # neuron params stay at defaults
    g = torch.Generator().manual_seed(SEED)
    for ep in range(epochs):
        perm = torch.randperm(N_TRAIN, generator=g)
        for i in range(0, N_TRAIN, bs):
            idx = perm[i : i + bs]
            counts = spikes(X[idx]).sum(1)
            loss = torch.nn.functional.cross_entropy(counts if logit_scale is None else counts * logit_scale, Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            acc = (spikes(X[N_TRAIN:]).sum(1).argmax(1) == Y[N_TRAIN:]).float().mean().item()
        print(f"{name} epoch {ep} loss {loss.item():.3f} acc_test {acc:.4f}")
    return acc


def save_case(case, *, nir_graph_writer, inputs, out_spikes, hidden_spikes, labels, meta):
    """out_spikes (T, 64, 10), hidden_spikes (T, 64, 64) as recorded by the framework."""
    nir_path = HERE / f"{case}.nir"
    nir_graph_writer(nir_path)
    out_spikes = np.asarray(out_spikes, dtype=np.float32)
    hidden_spikes = np.asarray(hidden_spikes, dtype=np.float32)
    counts = out_spikes.sum(0)
    np.savez_compressed(
        HERE / f"{case}.npz",
        inputs=np.asarray(inputs, dtype=np.float32),
        counts=counts.astype(np.float32),
        out_spikes=out_spikes,
        hidden_spikes=hidden_spikes,
        labels=np.asarray(labels, dtype=np.int64),
    )
    meta = dict(meta)
    meta["step_rule"] = STEP_RULES[case]
    meta.update(
        case=case,
        T=T,
        recorded_samples=[REC0, REC0 + NREC],
        npz_keys={
            "inputs": "(64, 256) float32, constant input current at every step",
            "counts": "(64, 10) float32, output spikes summed over the 32 steps",
            "out_spikes": "(32, 64, 10) float32, time-major, spikes per step (may be >1 for MultiSpike neurons)",
            "hidden_spikes": "(32, 64, 64) float32, time-major",
            "labels": "(64,) int64",
        },
        counts_max=float(counts.max()),
        counts_total=float(counts.sum()),
        nir_file=nir_path.name,
        nir_file_bytes=nir_path.stat().st_size,
    )
    with open(HERE / f"{case}.json", "w") as f:
        json.dump(meta, f, indent=2, sort_keys=False)
    print(f"{case}: acc_test={meta['accuracy_test']:.4f} nir={nir_path.stat().st_size} B")


# --------------------------------------------------------------------------- sinabs
def stage_sinabs():
    import nir
    import sinabs
    import sinabs.layers as sl
    import torch
    from torch import nn

    X, Y = load_digits16()
    X, Y = torch.tensor(X), torch.tensor(Y)
    for neuron in ["iaf", "lif"]:
        torch.manual_seed(SEED)
        if neuron == "iaf":
            mk = lambda: sl.IAFSqueeze(num_timesteps=T)  # all defaults
            params = dict(
                layer="sinabs.layers.IAFSqueeze(num_timesteps=32)",
                spike_threshold=1.0,
                min_v_mem=None,
                tau_syn=None,
                spike_fn="MultiSpike",
                reset_fn="MembraneSubtract(subtract_value=None) -> subtract k*spike_threshold",
                surrogate_grad_fn="SingleExponential(grad_width=0.5, grad_scale=1.0)",
            )
        else:
            mk = lambda: sl.LIFSqueeze(tau_mem=SINABS_LIF_TAU, num_timesteps=T)
            params = dict(
                layer=f"sinabs.layers.LIFSqueeze(tau_mem={SINABS_LIF_TAU}, num_timesteps=32)",
                tau_mem=SINABS_LIF_TAU,
                alpha_mem="exp(-1/tau_mem) (no dt: time in steps)",
                norm_input=True,
                tau_syn=None,
                spike_threshold=1.0,
                min_v_mem=None,
                train_alphas=False,
                spike_fn="MultiSpike",
                reset_fn="MembraneSubtract(subtract_value=None) -> subtract k*spike_threshold",
                surrogate_grad_fn="SingleExponential(grad_width=0.5, grad_scale=1.0)",
            )
        model = nn.Sequential(nn.Linear(256, 64), mk(), nn.Linear(64, 10), mk())

        def run(xb):
            B = xb.shape[0]
            sinabs.reset_states(model)
            inp = xb.unsqueeze(1).expand(B, T, 256).reshape(B * T, 256)
            h = model[1](model[0](inp))
            o = model[3](model[2](h))
            return h.reshape(B, T, 64), o.reshape(B, T, 10)

        lin_params = list(model[0].parameters()) + list(model[2].parameters())
        epochs, bs = 15, 64
        acc = train_torch(f"sinabs_{neuron}", lambda xb: run(xb)[1], lin_params, X, Y, lr=1e-3, epochs=epochs, bs=bs)

        with torch.no_grad():
            xr = X[REC0 : REC0 + NREC]
            h, o = run(xr)
            hidden = h.transpose(0, 1).numpy()
            outs = o.transpose(0, 1).numpy()
            sinabs.reset_states(model)
            graph = sinabs.to_nir(model, torch.zeros(T, 256))  # (batch 1 * T, 256)
            sinabs.reset_states(model)

        save_case(
            f"sinabs_{neuron}",
            nir_graph_writer=lambda p: nir.write(p, graph),
            inputs=xr.numpy(),
            out_spikes=outs,
            hidden_spikes=hidden,
            labels=Y[REC0 : REC0 + NREC].numpy(),
            meta=dict(
                framework="sinabs",
                neuron=params["layer"],
                network="nn.Sequential(nn.Linear(256,64), neuron, nn.Linear(64,10), neuron)",
                exporter="sinabs.to_nir(model, torch.zeros(32, 256)) == sinabs.nir.to_nir",
                dt="none: sinabs is in units of time steps (dt = 1 implied, tau in steps)",
                neuron_params=params,
                training=dict(
                    epochs=epochs, batch_size=bs, optimizer="Adam lr=1e-3 on Linear weights+biases only",
                    loss="cross_entropy(output spike counts summed over T, label)", seed=SEED,
                ),
                accuracy_test=acc,
                n_test=int(len(Y) - N_TRAIN),
                versions=versions(["sinabs", "torch", "nir", "nirtorch", "numpy", "samna", "scikit-learn", "h5py"]),
            ),
        )


# ------------------------------------------------------------------------- rockpool
def stage_rockpool():
    import nir
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    X, Y = load_digits16()
    X, Y = torch.tensor(X), torch.tensor(Y)
    torch.manual_seed(SEED)
    net = Sequential(
        LinearTorch((256, 64), has_bias=True),
        LIFTorch(64),  # all defaults: dt=1e-3, tau_mem=tau_syn=20e-3, threshold=1, bias=0
        LinearTorch((64, 10), has_bias=True),
        LIFTorch(10),
    )

    # Rockpool's defaults (dt=1 ms, tau_syn=tau_mem=20 ms) give a synaptic gain of
    # exp(-dt/tau)/(1-exp(-dt/tau)) ~ 19.5 and StepPWL has zero gradient below thr-0.5,
    # so with LinearTorch's kaiming init most output neurons start (and stay) dead.
    # Only the *Linear* init is changed: weights and biases x0.05, output bias = +0.02.
    lin = {n: p for n, p in net.named_parameters() if "LinearTorch" in n}
    with torch.no_grad():
        for p in lin.values():
            p.mul_(RP_INIT_SCALE)
        lin["2_LinearTorch.bias"].fill_(RP_OUT_BIAS)

    def run(xb, record=False):
        net.reset_state()  # LIFTorch carries vmem/isyn of batch element 0 across calls
        inp = xb.unsqueeze(1).expand(xb.shape[0], T, 256)
        out, _, rec = net.evolve(inp, record=record)
        return out, rec

    epochs, bs = 10, 64
    acc = train_torch("rockpool_lif", lambda xb: run(xb)[0], list(lin.values()), X, Y, lr=3e-4, epochs=epochs,
                      bs=bs, logit_scale=RP_LOGIT_SCALE)

    with torch.no_grad():
        xr = X[REC0 : REC0 + NREC]
        o, rec = run(xr, record=True)
        hidden = rec["1_LIFTorch_output"].transpose(0, 1).numpy()
        outs = o.transpose(0, 1).numpy()
        assert np.array_equal(outs, rec["3_LIFTorch_output"].transpose(0, 1).numpy())
        net.reset_state()
        graph = to_nir(net)  # default sample_data torch.zeros((1, 256))
        net.reset_state()

    lif = dict(net.named_children())["1_LIFTorch"]
    params = dict(
        layer="rockpool.nn.modules.LIFTorch(shape) (all defaults)",
        dt=float(lif.dt),
        tau_mem=float(lif.tau_mem[0].detach()),
        tau_syn=float(lif.tau_syn[0, 0].detach()),
        alpha="exp(-dt/tau_mem)",
        beta="exp(-dt/tau_syn)",
        threshold=1.0,
        bias=0.0,
        max_spikes_per_dt=float(lif.max_spikes_per_dt),
        spike_generation_fn="StepPWL: n = (v >= thr) * floor(v / thr)",
        learning_window=float(lif.learning_window),
        noise_std=float(lif.noise_std),
        leak_mode="taus",
        has_rec=False,
        linear="LinearTorch(shape, has_bias=True) (rockpool's default is has_bias=False)",
    )
    save_case(
        "rockpool_lif",
        nir_graph_writer=lambda p: nir.write(p, graph),
        inputs=xr.numpy(),
        out_spikes=outs,
        hidden_spikes=hidden,
        labels=Y[REC0 : REC0 + NREC].numpy(),
        meta=dict(
            framework="rockpool",
            neuron="LIFTorch",
            network="Sequential(LinearTorch((256,64),has_bias=True), LIFTorch(64), LinearTorch((64,10),has_bias=True), LIFTorch(10))",
            exporter="rockpool.nn.modules.torch.nir.to_nir(net) (sample_data defaults to torch.zeros((1, 256)))",
            dt=float(lif.dt),
            dt_note="dt is NOT written to the file; it only enters r = tau_mem*exp(-dt/tau_mem)/dt",
            neuron_params=params,
            training=dict(
                epochs=epochs, batch_size=bs, optimizer="Adam lr=3e-4 on LinearTorch weights+biases only",
                loss=f"cross_entropy({RP_LOGIT_SCALE} * output spike counts summed over T, label)", seed=SEED,
                init=f"LinearTorch default kaiming init, then all Linear weights+biases x{RP_INIT_SCALE}, "
                f"output Linear bias filled with {RP_OUT_BIAS} (otherwise dead output neurons, ~20% acc)",
            ),
            accuracy_test=acc,
            n_test=int(len(Y) - N_TRAIN),
            versions=versions(["rockpool", "torch", "nir", "nirtorch", "numpy", "scipy", "scikit-learn", "h5py"]),
        ),
    )


# ----------------------------------------------------------------------------- spyx
def stage_spyx():
    import jax
    import jax.numpy as jnp
    import nir
    import optax
    import spyx
    import spyx.nir
    import spyx.nn as snn
    from flax import nnx

    X, Y = load_digits16()
    for neuron in ["lif", "if"]:
        rngs = nnx.Rngs(SEED)
        if neuron == "lif":
            mk = lambda n: snn.LIF((n,), rngs=rngs)  # beta ~ truncnorm(0.25)+0.5 per neuron
        else:
            mk = lambda n: snn.IF((n,))  # threshold 1
        model = snn.Sequential(
            nnx.Linear(256, 64, rngs=rngs), mk(64), nnx.Linear(64, 10, rngs=rngs), mk(10)
        )
        lin0, n0, lin1, n1 = model.layers

        def run(model, xb):
            """Time-major scan over the framework's own layer calls; returns (hidden, out)."""
            lin0, n0, lin1, n1 = model.layers
            B = xb.shape[0]
            s0, s1 = n0.initial_state(B), n1.initial_state(B)

            def step(carry, x_t):
                s0, s1 = carry
                h, s0 = n0(lin0(x_t), s0)
                o, s1 = n1(lin1(h), s1)
                return (s0, s1), (h, o)

            xs = jnp.broadcast_to(xb[None], (T,) + xb.shape)
            _, (h, o) = jax.lax.scan(step, (s0, s1), xs)
            return h, o  # (T, B, 64), (T, B, 10)

        # sanity: same as spyx.nn.run on the Sequential
        xt = jnp.asarray(X[:4])
        ref, _ = snn.run(model, jnp.broadcast_to(xt[None], (T, 4, 256)))
        assert np.array_equal(np.asarray(ref), np.asarray(run(model, xt)[1]))

        wrt = nnx.All(nnx.Param, nnx.Not(nnx.PathContains("beta")))  # train Linear only
        opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=wrt)

        @nnx.jit
        def train_step(model, opt, xb, yb):
            def loss_fn(model):
                _, o = run(model, xb)
                return optax.softmax_cross_entropy_with_integer_labels(o.sum(0), yb).mean()

            loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, wrt))(model)
            opt.update(model, grads)
            return loss

        @nnx.jit
        def counts_fn(model, xb):
            return run(model, xb)[1].sum(0)

        epochs, bs = (20 if neuron == "lif" else 40), 64
        key = np.random.default_rng(SEED)
        Xj, Yj = jnp.asarray(X), jnp.asarray(Y)
        for ep in range(epochs):
            perm = key.permutation(N_TRAIN)
            for i in range(0, N_TRAIN, bs):
                idx = perm[i : i + bs]
                loss = train_step(model, opt, Xj[idx], Yj[idx])
            acc = float((np.asarray(counts_fn(model, Xj[N_TRAIN:])).argmax(1) == Y[N_TRAIN:]).mean())
            print(f"spyx_{neuron} epoch {ep} loss {float(loss):.3f} acc_test {acc:.4f}")

        xr = Xj[REC0 : REC0 + NREC]
        h, o = run(model, xr)
        graph = spyx.nir.to_nir(model, {"input": np.array([256])}, {"output": np.array([10])}, dt=1)
        if neuron == "lif":
            params = dict(
                layer="spyx.nn.LIF((n,), rngs=nnx.Rngs(0)) (all defaults)",
                threshold=float(n1.threshold),
                beta="per-neuron, default init truncated_normal(stddev=0.25)+0.5, NOT trained; clip(beta,0,1) in forward",
                beta_hidden=np.asarray(n0.beta[...]).tolist(),
                beta_out=np.asarray(n1.beta[...]).tolist(),
                activation="superspike(k=25): forward heaviside(x) = x > 0",
            )
        else:
            params = dict(
                layer="spyx.nn.IF((n,)) (all defaults)",
                threshold=float(n1.threshold),
                activation="superspike(k=25): forward heaviside(x) = x > 0",
            )
        save_case(
            f"spyx_{neuron}",
            nir_graph_writer=lambda p: nir.write(p, graph),
            inputs=np.asarray(xr),
            out_spikes=np.asarray(o),
            hidden_spikes=np.asarray(h),
            labels=Y[REC0 : REC0 + NREC],
            meta=dict(
                framework="spyx",
                neuron=params["layer"],
                network="spyx.nn.Sequential(nnx.Linear(256,64), neuron, nnx.Linear(64,10), neuron)",
                exporter="spyx.nir.to_nir(model, {'input': [256]}, {'output': [10]}, dt=1)",
                dt=1,
                neuron_params=params,
                training=dict(
                    epochs=epochs, batch_size=bs, optimizer="optax.adam(1e-3) on nnx.Linear kernel+bias only",
                    loss="softmax_cross_entropy(output spike counts summed over T, label)", seed=SEED,
                ),
                accuracy_test=acc,
                n_test=int(len(Y) - N_TRAIN),
                versions=versions(["spyx", "jax", "jaxlib", "flax", "optax", "nir", "numpy", "scikit-learn", "h5py"]),
            ),
        )


# ---------------------------------------------------------------- numpy replay check
def read_nir_h5(path):
    """Read a NIR file with h5py only -> (nodes: {name: {field: array|str}}, edges)."""
    import h5py

    def rec(g):
        out = {}
        for k, v in g.items():
            if isinstance(v, h5py.Group):
                out[k] = rec(v)
            else:
                val = v[()]
                out[k] = val.decode() if isinstance(val, bytes) else val
        return out

    with h5py.File(path, "r") as f:
        root = rec(f["node"])
    edges = [tuple(e.decode() if isinstance(e, bytes) else e for e in pair) for pair in root["edges"]]
    return root["nodes"], edges


def chain(nodes, edges):
    """Nodes in order input -> ... -> output for a feed-forward chain graph."""
    nxt = {}
    for a, b in edges:
        nxt.setdefault(a, []).append(b)
    start = [n for n, d in nodes.items() if d["type"] == "Input"]
    assert len(start) == 1, start
    order, cur = [], start[0]
    while True:
        order.append(cur)
        if nodes[cur]["type"] == "Output":
            return order
        (cur,) = nxt[cur]


def f32(a):
    return np.asarray(a, dtype=np.float32)


def exp_f32(x):
    """Correctly rounded float32 exp (torch's CPU float32 exp is; numpy's float32 exp can be
    1 ulp off, e.g. exp(-0.05f), which is exactly rockpool's default decay)."""
    return f32(np.exp(np.asarray(x, dtype=np.float64)))


def replay(case, nir_path, inputs, variant=None):
    """Replay `case` from the constants in its NIR file; returns (hidden, out) spikes (T, B, n).

    Step rules (float32, one op at a time like the frameworks):
      sinabs IF  : v += I;                            k = (v>0)*trunc(v/thr); v -= k*thr
      sinabs LIF : a = exp(-1/tau); v = a*v + (1-a)*I; k = (v>0)*trunc(v/thr); v -= k*thr
                   (the (1-a) input factor is sinabs' norm_input=True; the file has r=1)
      rockpool   : dt from r = tau_mem*exp(-dt/tau_mem)/dt (dt is not in the file);
                   a = exp(-dt/tau_mem), b = exp(-dt/tau_syn)
                   isyn = (isyn + I)*b; v = a*v + isyn (+ bias, dropped by exporter: v_leak=0)
                   k = (v >= thr)*floor(v/thr) (max_spikes_per_dt 2**16 default); v -= k*thr
      spyx LIF   : s = (v > thr) on the PREVIOUS v; v = beta*v + I - s*thr, beta = clip(r,0,1)
                   (spyx writes r = beta and tau = dt/(1-beta), dt=1)
      spyx IF    : s = (v > thr) on the previous v; v = v + I - s*thr

    variant (diagnostics only): "beta_from_tau" (spyx LIF: beta = 1 - dt/tau, dt=1, as
    spyx.nir.from_nir does, instead of r) or "no_norm_input" (sinabs LIF: v = a*v + r*I,
    i.e. trusting the file's r=1 and ignoring sinabs' norm_input factor).
    """
    nodes, edges = read_nir_h5(nir_path)
    order = chain(nodes, edges)
    x = f32(inputs)
    B = x.shape[0]
    layers = [nodes[n] for n in order if nodes[n]["type"] not in ("Input", "Output")]
    fw = case.split("_")[0]
    state = []
    for L in layers:
        if L["type"] in ("Affine", "Linear"):
            state.append(None)
            continue
        state.append({"v": None, "isyn": None})
    outs = []
    for t in range(T):
        h = x
        spikes_per_layer = []
        for L, st in zip(layers, state):
            typ = L["type"]
            if typ == "Affine":
                h = f32(h @ f32(L["weight"]).T + f32(L["bias"]))
                continue
            if typ == "Linear":
                h = f32(h @ f32(L["weight"]).T)
                continue
            thr = f32(L["v_threshold"])
            if st["v"] is None:
                st["v"] = np.zeros_like(h)
                st["isyn"] = np.zeros_like(h)
            v = st["v"]
            if fw == "sinabs":
                if typ == "IF":
                    v = f32(v + h)
                elif typ == "LIF":
                    a = exp_f32(f32(f32(1.0 / f32(L["tau"])) * f32(-1.0)))  # torch.exp(-1.0/tau)
                    gain = f32(L["r"]) if variant == "no_norm_input" else f32(1 - a)
                    v = f32(f32(a * v) + f32(gain * h))
                else:
                    raise ValueError(typ)
                k = f32((v > 0) * np.trunc(f32(v / thr)))
                v = f32(v - f32(k * thr))
                s = k
            elif fw == "rockpool":
                assert typ == "CubaLIF", typ
                tau_m, tau_s, r = f32(L["tau_mem"]), f32(L["tau_syn"]), np.float64(L["r"])
                dt = rockpool_dt_from_r(np.float64(L["tau_mem"]), r)
                a = exp_f32(f32(f32(1.0 / tau_m) * f32(-dt)))  # torch: -dt/tau == reciprocal(tau)*(-dt)
                b = exp_f32(f32(f32(1.0 / tau_s) * f32(-dt)))
                st["isyn"] = f32(f32(st["isyn"] + h) * b)
                v = f32(f32(v * a) + st["isyn"])  # + v_leak? exporter writes zeros, bias dropped
                k = f32((v >= thr) * np.floor(f32(v / thr)))
                v = f32(v - f32(k * thr))
                s = k
            elif fw == "spyx":
                s = f32(f32(v - thr) > 0)
                if typ == "LIF":
                    beta = f32(1 - f32(1.0 / f32(L["tau"]))) if variant == "beta_from_tau" else f32(L["r"])
                    beta = np.clip(beta, 0, 1)
                    v = f32(f32(f32(beta * v) + h) - f32(s * thr))
                elif typ == "IF":
                    v = f32(f32(v + h) - f32(s * thr))
                else:
                    raise ValueError(typ)
            st["v"] = v
            h = s
            spikes_per_layer.append(s)
        outs.append(spikes_per_layer)
    hidden = np.stack([o[0] for o in outs])
    out = np.stack([o[-1] for o in outs])
    return hidden, out


def rockpool_dt_from_r(tau_mem, r):
    """Solve r = tau*exp(-u)/dt with u = dt/tau, i.e. u*exp(u) = 1/r (Lambert W0), per neuron."""
    tau_mem = np.broadcast_to(np.asarray(tau_mem, np.float64), np.shape(r))
    u = np.full(np.shape(r), 0.05)
    z = 1.0 / np.asarray(r, np.float64)
    for _ in range(50):  # Newton on f(u) = u*e^u - z
        eu = np.exp(u)
        u = u - (u * eu - z) / (eu * (1 + u))
    dt = u * tau_mem
    return float(np.median(dt))


def stage_check(cases=None):
    results = {}
    ref_inputs = None
    for case in cases or CASES:
        npz = HERE / f"{case}.npz"
        if not npz.exists():
            print(f"{case}: missing")
            continue
        z = np.load(npz)
        if ref_inputs is None:
            ref_inputs = z["inputs"]
        same_inputs = bool(np.array_equal(ref_inputs, z["inputs"]))
        hidden, out = replay(case, HERE / f"{case}.nir", z["inputs"])
        counts = out.sum(0)
        eq_rows = int(np.all(counts == z["counts"], axis=1).sum())
        hid_eq = bool(np.array_equal(hidden, z["hidden_spikes"]))
        out_eq = bool(np.array_equal(out, z["out_spikes"]))
        acc_rec = float((z["counts"].argmax(1) == z["labels"]).mean())
        results[case] = dict(
            samples_with_equal_counts=eq_rows, of=int(len(counts)),
            out_spikes_identical=out_eq, hidden_spikes_identical=hid_eq,
            inputs_identical_to_first_case=same_inputs, recorded_acc=acc_rec,
        )
        print(f"{case}: counts equal for {eq_rows}/{len(counts)} samples; out_spikes identical={out_eq}; "
              f"hidden identical={hid_eq}; inputs same={same_inputs}")
        variant = {"spyx_lif": "beta_from_tau", "sinabs_lif": "no_norm_input"}.get(case)
        if variant:
            _, vout = replay(case, HERE / f"{case}.nir", z["inputs"], variant=variant)
            veq = int(np.all(vout.sum(0) == z["counts"], axis=1).sum())
            results[case][f"variant_{variant}_samples_equal"] = veq
            print(f"  diagnostic variant {variant}: counts equal for {veq}/{len(counts)} samples")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["data", "sinabs", "rockpool", "spyx", "check"])
    a = ap.parse_args()
    {"data": stage_data, "sinabs": stage_sinabs, "rockpool": stage_rockpool,
     "spyx": stage_spyx, "check": stage_check}[a.stage]()


if __name__ == "__main__":
    main()
