"""`ghostnas arch ...` and `ghostnas space show`: inspect architectures and spaces."""

from __future__ import annotations

import argparse

from .text import arch_table, print_json


def show(args: argparse.Namespace) -> int:
    from ..arch import load_arch
    from ..cost import count

    arch = load_arch(args.arch)
    cost = count(arch, resolution=args.resolution, num_classes=args.num_classes)
    if args.json:
        out = {"name": arch.name, "params": cost.params, "macs": cost.macs,
               "resolution": cost.resolution, "width": arch.width,
               "layers": [l._asdict() for l in cost.layers], "arch": arch.to_dict()}
        print_json(out)
        return 0
    print("\n".join(arch_table(arch, cost)))
    return 0


def sample(args: argparse.Namespace) -> int:
    from ..arch import save_arch
    from ..cost import count
    from ..space import load_space

    space = load_space(args.space)
    labels = space.sample(args.seed)
    arch = space.to_arch(labels, name=f"{space.name}-seed{args.seed}")
    cost = count(arch)
    if args.out:
        save_arch(arch, args.out)
    if args.json:
        print_json({"name": arch.name, "labels": labels, "params": cost.params, "macs": cost.macs,
                     "out": args.out, "arch": arch.to_dict()})
    else:
        where = f" -> {args.out}" if args.out else ""
        print(f"{arch.name}: params {cost.params / 1e6:.2f}M, MACs {cost.macs / 1e6:.1f}M{where}")
        if not args.out:
            print(arch.to_json())
    return 0


def list_registered(args: argparse.Namespace) -> int:
    from ..arch import load_arch, registered_names
    from ..cost import count

    rows = []
    for name in registered_names():
        c = count(load_arch(name))
        rows.append({"name": name, "params": c.params, "macs": c.macs})
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['name']:<12} params {row['params']:>10,}  MACs {row['macs'] / 1e6:7.1f}M")
    return 0


def space_show(args: argparse.Namespace) -> int:
    from ..arch import load_arch, registered_names
    from ..space import load_space

    space = load_space(args.space)
    info = space.summary()
    info["paper_points"] = [n for n in registered_names() if space.contains(load_arch(n))]
    info["labels"] = {name: list(choices) for name, choices in space.dimensions()}
    if args.json:
        print_json(info)
        return 0
    print(f"space {info['name']} ({info['source']})")
    print(f"  {info['stages']} stages, up to {info['max_blocks']} blocks, {info['dimensions']} labels, "
          f"{info['size']:.3e} distinct networks, deployment resolution {info['resolution']}")
    print(f"  paper networks in the space: {', '.join(info['paper_points']) or 'none'}")
    for name, choices in info["labels"].items():
        print(f"  {name:<12} {choices}")
    return 0


