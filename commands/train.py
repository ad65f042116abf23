"""`mst train`: train a QCFS ANN (MST, ResNet, VGG) or a directly trained SNN (SAFormer)."""
from __future__ import annotations

from ..machine import DEVICES
from .common import add_mask_options, count, mask_overrides, number, seed


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train a QCFS ANN (mst, resnet, vgg) or a directly trained SNN "
                                     "(saformer), with Random Spike Masking")
    t.add_argument("--model", default="mst-tiny", help="preset: mst-tiny, mst-fmnist, mst-t, resnet18, vgg16, vgg-tiny, "
                                                        "saformer-tiny, saformer-cifar")
    t.add_argument("--dataset", default="digits",
                   help="digits (built in), fashion-mnist (`make data`), mnist, cifar10, cifar100, imagenet, folder (your "
                        "own: --data DIR with train/<class>/ and val/ or test/); event data nmnist, dvsgesture, "
                        "cifar10dvs (SAFormer)")
    t.add_argument("--data", metavar="PATH", help="local data directory (not needed for digits; fashion-mnist: "
                                                           "default /usr/share/datasets/fashion-mnist)")
    add_mask_options(t)
    t.add_argument("--mask-sites", metavar="S1,S2", help="MST / SAFormer sites among q,k,attn,mlp "
                                                        "(default q,k,attn)")
    t.add_argument("--attention", choices=["softmax", "spiking"], help="MST attention mode")
    t.add_argument("--levels", type=count, help="QCFS levels L of MST / ResNet / VGG (preset's default: 16; "
                                                 "mst-fmnist 8): fewer levels, fewer spikes per image")
    t.add_argument("--img-size", type=count, help="input size (default: the preset's; images are resized to it)")
    t.add_argument("-T", "--steps", type=count, help="SAFormer: time steps per image (default 4)")
    t.add_argument("--recipe", choices=["default", "official"], default="default",
                   help="official: the official MST training recipe (AdamW 1e-4, 300 epochs with 20 of warm-up, "
                        "drop path 0.2, mixup/cutmix, RandAugment and random erasing on ImageNet, AMP on GPU); "
                        "options given below override its numbers")
    t.add_argument("--epochs", type=count, help="default 60 (official recipe: 300)")
    t.add_argument("--batch-size", type=count, default=64, help="global batch (split across ranks)")
    t.add_argument("--lr", type=number, help="peak learning rate (default 2e-3; official 1e-4)")
    t.add_argument("--weight-decay", type=number, help="default 0.05")
    t.add_argument("--warmup-epochs", type=number, help="default 3 (official: 20 of 300 epochs, in proportion)")
    t.add_argument("--label-smoothing", type=number, help="default 0.1")
    t.add_argument("--clip-grad", type=number, help="default 5")
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--device", default="auto", choices=DEVICES)
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--out", default="ckpt.pt", help="checkpoint path (written atomically)")
    t.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import check_outputs
    from .. import api
    from ..models.recipe import DEFAULTS
    check_outputs({"--out": args.out}, [args.data])
    overrides = mask_overrides(args)
    if args.attention:
        overrides["attention"] = args.attention
    if args.mask_sites:
        overrides["mask_sites"] = [s for s in args.mask_sites.split(",") if s]
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.levels is not None:
        overrides["levels"] = args.levels
    if args.img_size:
        overrides["img_size"] = args.img_size
    numbers = {k: getattr(args, k, None) for k in DEFAULTS[args.recipe]}
    _, r = api.train(args.model, args.dataset, data=args.data, out=args.out, recipe=args.recipe,
                     progress=not args.no_progress, batch_size=args.batch_size, seed=args.seed, device=args.device,
                     **numbers, **overrides)
    if r.get("rank", 0) == 0:
        print(f"{r['accuracy_label']} top-1 accuracy on {args.dataset} test: {100 * r['accuracy']:.2f}%  -> {args.out}")
    return 0
