"""`ghostnas supernet train`."""

from __future__ import annotations

import argparse

from .text import print_json


def train(args: argparse.Namespace) -> int:
    import sys

    from ..data import load_data
    from ..space import load_space
    from ..supernet import get_supernet_protocol, train_supernet

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    protocol = get_supernet_protocol(args.recipe, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                     seed=args.seed, train_subset=args.subset)
    space = load_space(args.space)
    data = load_data(args.data, seed=protocol.seed, folder_size=protocol.resolution)

    def say(epoch: int, loss: float) -> None:
        if not args.json:
            print(f"epoch {epoch:>3}/{protocol.epochs}  loss {loss:.4f}", file=sys.stderr, flush=True)

    record = train_supernet(space, data, protocol, args.out, resume=args.resume, device=args.device,
                            progress=not args.json and sys.stderr.isatty(), on_epoch=say)
    summary = {"out": args.out, "space": space.name, "data": record["data"], "recipe": record["protocol"],
               "epochs": record["epochs_done"], "digest": record["digest"],
               "seconds": round(sum(h["seconds"] for h in record["history"]), 1)}
    if args.json:
        print_json(summary)
    else:
        print(f"supernet of {space.name} on {data.name}: {summary['epochs']} epochs, {summary['seconds'] / 60:.1f} min "
              f"-> {args.out}; next: ghostnas search --supernet {args.out} --space {args.space} --data {args.data} "
              "--budget 150MFLOPs")
    return 0
