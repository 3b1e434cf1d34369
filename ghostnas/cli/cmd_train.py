"""`ghostnas train`."""

from __future__ import annotations

import argparse

from .text import print_json


def train(args: argparse.Namespace) -> int:
    import sys

    from ..arch import load_arch
    from ..data import load_data
    from ..train import default_run_dir, get_protocol, train_run

    arch = load_arch(args.arch)
    protocol = get_protocol(args.protocol, epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
                            lr=args.lr, resolution=args.resolution, train_subset=args.subset,
                            reparam=args.reparam)
    data = load_data(args.data, seed=protocol.seed, folder_size=protocol.resolution)
    if args.eval == "test":  # train on train + validation, score on the official test set
        data = data.for_test()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = args.out or default_run_dir(arch, args.data, protocol.seed, data.scored_on)
    init = inherited_weights(args.init, arch, data.num_classes) if args.init else None
    summary, history = train_run(arch, data, protocol, out, resume=args.resume, device=args.device,
                                 progress=not args.json and sys.stderr.isatty(), init=init)
    if args.init:
        summary["init"] = args.init
    if args.json:
        print_json(summary)
        return 0
    split = summary["scored_on"]
    for h in history:
        print(f"epoch {h['epoch']:>3}  train loss {h['train_loss']:.4f}  acc {h['train_acc']:.4f}  "
              f"{split} acc {h['val_acc']:.4f}  ({h['seconds']:.1f} s)")
    print(f"{arch.name}: {split} top-1 {summary['val_acc']:.4f} on {data.name} after {summary['epochs']} epochs, "
          f"{summary['seconds']:.1f} s on {summary['device']}; weights, metrics.csv and checkpoint in {out}")
    return 0


def inherited_weights(spec: str, arch, num_classes: int):
    """``--init supernet:DIR``: the arch's weights as a trained supernet holds them."""
    from ..errors import GhostNASError
    from ..supernet import load_supernet

    kind, _, folder = spec.partition(":")
    if kind != "supernet" or not folder:
        raise GhostNASError(f"--init {spec!r}: use supernet:DIR (a folder from `ghostnas supernet train`)")
    net, record = load_supernet(folder)
    if not net.space.contains(arch):
        raise GhostNASError(f"--init: {arch.name or 'the arch'} is not a network of the supernet's space "
                            f"{record['space_name']!r}")
    if record["num_classes"] != num_classes:
        raise GhostNASError(f"--init: the supernet has {record['num_classes']} classes, the data {num_classes}")
    return net.extract(arch).state_dict()
