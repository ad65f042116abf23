"""Checkpoints: one file with the weights and the full model config, loadable without training code.

Format (torch.save of a dict of plain types, read back with weights_only=True):
    {"format": "mstdeploy-checkpoint", "version": 1, "config": {...}, "state_dict": {...},
     "meta": {...}}   # meta: dataset, accuracy, training arguments (informational only)
"""
from __future__ import annotations

import io
import pathlib
import pickle
import re
import warnings

import torch
from torch import nn

from ..atomic import write_bytes
from ..errors import UserError
from ..machine import check_fits
from .config import config_from_dict
from .registry import build_model

FORMAT, VERSION = "mstdeploy-checkpoint", 1
_UNSAFE = re.compile(r"unsupported GLOBAL (\S+)")      # torch's message for a refused global


def save(path, model: nn.Module, meta: dict | None = None) -> None:
    model = getattr(model, "module", model)  # unwrap DDP
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
               "state_dict": state, "meta": dict(meta or {})}
    buf = io.BytesIO()                  # in memory first: a full disk fails cleanly (atomic.write_files)
    torch.save(payload, buf)
    write_bytes(path, buf.getbuffer())


def load_file(path):
    """torch.load of a file of tensors and plain types only (weights_only: nothing in it runs), or a
    UserError saying why it cannot be read."""
    p = pathlib.Path(path)
    if not p.is_file():
        raise UserError(f"checkpoint not found: {p}")
    try:
        with warnings.catch_warnings():          # a corrupt header makes torch warn before it fails
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = _UNSAFE.search(str(e))
        if found:
            raise UserError(f"{p} is not a safe checkpoint: it asks to run {found.group(1)} when loaded; "
                            "it was refused and nothing in it ran") from None
        raise UserError(f"{p} is not a readable checkpoint (corrupt or truncated file)") from None
    except Exception:  # noqa: BLE001 - a corrupt pickle stream fails anywhere in torch's unpickler
        raise UserError(f"{p} is not a readable checkpoint (corrupt or truncated file)") from None


def read(path) -> dict:
    """The raw checkpoint dict, or a UserError saying why it cannot be one."""
    p = pathlib.Path(path)
    payload = load_file(p)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{p} is not an mstdeploy checkpoint")
    if payload.get("version") != VERSION:
        raise UserError(f"{p}: checkpoint version {payload.get('version')!r} is not supported")
    for key, kind in (("config", dict), ("state_dict", dict), ("meta", dict)):
        if not isinstance(payload.get(key), kind):
            raise UserError(f"{p}: the checkpoint's {key!r} is missing or not a {kind.__name__}")
    for name, t in payload["state_dict"].items():
        if not isinstance(t, torch.Tensor):
            raise UserError(f"{p}: weight {name!r} is not a tensor")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise UserError(f"{p}: weight {name!r} holds NaN or infinite values")
    return payload


def check_size(cfg) -> None:
    """Before building a model: its weights fit in memory (a config may ask for anything)."""
    with torch.device("meta"):
        model = build_model(cfg)
    n = sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())
    check_fits(8 * n, f"the {cfg.arch} model ({n:,} weights)", "the model's sizes (embed_dim, depths, width)")


def load(path, **overrides) -> tuple[nn.Module, dict]:
    """(model in eval mode, checkpoint dict). `overrides` change config fields, e.g. mask=0.5."""
    payload = read(path)
    cfg = config_from_dict({**payload["config"], **overrides})
    if cfg.arch == "mst" and any(k.startswith("stages.") for k in payload["state_dict"]):
        raise UserError(f"{path} holds an MST of the layout before mstdeploy followed the official code "
                        "(attention shortcut after norm1, other weight names); retrain it, or bring an "
                        "official checkpoint with `mst import`")
    check_size(cfg)
    model = build_model(cfg)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise UserError(f"{path}: weights do not match the stored config ({first})") from None
    return model.eval(), payload
