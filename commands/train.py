"""`mst train`: train a QCFS ANN (MST, ResNet, VGG) or a directly trained SNN (SAFormer)."""
from __future__ import annotations

from .common import add_mask_options, count, mask_overrides, number, seed


def add_parser(sub) -> None:
    t = sub.add_parser("train", help="train a QCFS ANN (mst, resnet, vgg) or a directly trained SNN "
                                     "(saformer), with Random Spike Masking")
    t.add_argument("--model", default="mst-tiny", help="preset: mst-tiny, mst-t, resnet18, vgg16, vgg-tiny, "
                                                        "saformer-tiny, saformer-cifar")
    t.add_argument("--dataset", default="digits", help="digits (built in), cifar10, cifar100, imagenet")
    t.add_argument("--data", metavar="PATH", help="local data directory (not needed for digits)")
    add_mask_options(t)
    t.add_argument("--mask-sites", metavar="S1,S2", help="MST / SAFormer sites among q,k,attn,mlp "
                                                        "(default q,k,attn)")
    t.add_argument("--attention", choices=["softmax", "spiking"], help="MST attention mode")
    t.add_argument("-T", "--steps", type=count, help="SAFormer: time steps per image (default 4)")
    t.add_argument("--epochs", type=count, default=60)
    t.add_argument("--batch-size", type=count, default=64, help="global batch (split across ranks)")
    t.add_argument("--lr", type=number, default=2e-3)
    t.add_argument("--weight-decay", type=number, default=0.05)
    t.add_argument("--warmup-epochs", type=number, default=3.0)
    t.add_argument("--label-smoothing", type=number, default=0.1)
    t.add_argument("--clip-grad", type=number, default=5.0)
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--out", default="ckpt.pt", help="checkpoint path (written atomically)")
    t.set_defaults(func=run)


def run(args) -> int:
    from ..atomic import check_outputs
    from ..models.train import TrainArgs, train
    check_outputs({"--out": args.out}, [args.data])
    overrides = mask_overrides(args)
    if args.attention:
        overrides["attention"] = args.attention
    if args.mask_sites:
        overrides["mask_sites"] = [s for s in args.mask_sites.split(",") if s]
    if args.steps is not None:
        overrides["steps"] = args.steps
    a = TrainArgs(model=args.model, dataset=args.dataset, data=args.data, out=args.out,
                  overrides=overrides, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                  label_smoothing=args.label_smoothing, clip_grad=args.clip_grad, seed=args.seed,
                  device=args.device, progress=not args.no_progress)
    r = train(a)
    if r.get("rank", 0) == 0:
        print(f"{r['accuracy_label']} top-1 accuracy on {a.dataset} test: {100 * r['accuracy']:.2f}%  -> {a.out}")
    return 0
