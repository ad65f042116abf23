"""`mst import`: an official MST checkpoint (bic-L/Masked-Spiking-Transformer) as our checkpoint."""
from __future__ import annotations

from .common import add_mask_options, count, mask_overrides


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="read an official MST checkpoint ({'model': state_dict} or a state "
                                      "dict); the architecture is inferred from its tensors")
    p.add_argument("source", help="official checkpoint file (.pth)")
    p.add_argument("-o", "--output", required=True, help="our checkpoint to write (atomically)")
    add_mask_options(p)
    p.add_argument("--attention", choices=["softmax", "spiking"], default="softmax",
                   help="attention mode (the official code: softmax)")
    p.add_argument("--levels", type=count, default=16, help="QCFS levels L (the official code: 16)")
    p.add_argument("--img-size", type=count,
                   help="input size, needed only when no shifted block stores its attention mask "
                        "(default: from the masks, else 224)")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import api
    from ..atomic import check_outputs
    from ..models import checkpoint
    check_outputs({"--output": args.output}, [args.source])
    model = api.import_official(args.source, img_size=args.img_size, attention=args.attention, levels=args.levels,
                                mask=mask_overrides(args).get("mask"))
    cfg = model.config
    checkpoint.save(args.output, model, {"source": str(args.source), "imported": "official MST"})
    print(f"wrote {args.output}: MST {cfg.img_size}x{cfg.img_size}, patch {cfg.patch_size}, embed {cfg.embed_dim}, "
          f"depths {cfg.depths}, heads {cfg.num_heads}, window {cfg.window_size}, MLP ratio {cfg.mlp_ratio:g}, "
          f"{cfg.num_classes} classes, MLP BN {'on' if cfg.mlp_bn else 'off'}, {cfg.attention} attention, "
          f"mask {cfg.mask}")
    return 0
