"""The round trip to another device: export one small model per entry with the torch-free
runner (``ghostnas lut export-blocks``), and import what the runner measured (``lut import``)."""

from __future__ import annotations

import csv
import json
import os
import random
from pathlib import Path
from typing import Any, Callable

from ...errors import GhostNASError
from .keys import COLUMNS, Entry, arch_entries, select_entries
from .table import LUT_FORMAT, LatencyModel, fit_calibration, read_rows
from .timing import REFERENCE, entry_module


def export_blocks(space, fmt: str, out: "str | os.PathLike[str]", max_entries: int | None = None,
                  networks: int = 16, seed: int = 0, log: Callable[[str], None] = print) -> Path:
    """One small model per entry (and ``networks`` random whole networks for calibration) plus a
    manifest and the torch-free runner, for timing on a device."""
    import shutil

    import torch

    from ...export import export_onnx, export_tflite
    from ...io import atomic_write_text, make_dir
    from ...nn.ghostnet import create_model

    if fmt not in ("onnx", "tflite"):
        raise GhostNASError(f"unknown format {fmt!r}; use onnx or tflite")
    out = Path(out)
    make_dir(out / "models", "--out")
    writer = export_onnx if fmt == "onnx" else export_tflite
    entries = select_entries(space, max_entries, seed)
    log(f"exporting {len(entries)} entries and {networks} networks as {fmt} to {out}")
    manifest: dict[str, Any] = {"format": fmt, "space": space.name, "space_name": space.name,
                                "space_hash": space.digest(),
                                "resolution": space.resolution, "entries": [], "networks": []}
    for n, e in enumerate(entries):
        module, shape = entry_module(e)
        path = out / "models" / f"e{n:05d}.{fmt}"
        if not path.exists():
            writer(module, torch.zeros(*shape), path)
        manifest["entries"].append({"key": e.key, "file": str(path.relative_to(out)), "input_shape": list(shape)})
    module, shape = entry_module(REFERENCE)
    path = out / "models" / f"reference.{fmt}"
    if not path.exists():
        writer(module, torch.zeros(*shape), path)
    manifest["reference"] = {"key": REFERENCE.key, "file": str(path.relative_to(out)), "input_shape": list(shape)}
    rng = random.Random(seed + 1)
    for n in range(networks):
        arch = space.to_arch(space.sample(rng))
        path = out / "models" / f"net{n:03d}.{fmt}"
        shape = (1, 3, arch.resolution, arch.resolution)
        if not path.exists():
            writer(create_model(arch).eval(), torch.zeros(*shape), path)
        manifest["networks"].append({"key": "net|" + ",".join(x.key for x in arch_entries(arch.resolve())),
                                     "file": str(path.relative_to(out)), "input_shape": list(shape)})
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    shutil.copy(Path(__file__).resolve().parents[2] / "device_runner.py", out / "ghostnas_runner.py")
    return out


def import_measurements(folder: "str | os.PathLike[str]", out: "str | os.PathLike[str]") -> LatencyModel:
    """Turn a device's ``measured.csv`` (from the runner) into a LUT with metadata and calibration."""
    from ...io import atomic_write, atomic_write_text

    folder = Path(folder)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        device = json.loads((folder / "device.json").read_text())
        with open(folder / "measured.csv", newline="") as fh:
            measured = [r for r in csv.DictReader(fh) if r.get("runs")]
    except (OSError, json.JSONDecodeError, csv.Error) as exc:
        raise GhostNASError(f"{folder}: needs manifest.json, device.json and measured.csv from the "
                            f"runner ({exc})") from None
    rows, nets = {}, []
    for r in measured:
        if r["key"].startswith("net|"):
            nets.append(r)
            continue
        e = Entry.from_key(r["key"])
        rows[e.key] = {"key": e.key, "kind": e.kind, **e.features(),
                       **{k: float(r[k]) for k in ("median_ms", "p10_ms", "p90_ms", "runs")}}
    out = Path(out)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows.values())

    atomic_write(out, write)
    meta = {"format": LUT_FORMAT, "space": manifest["space"], "space_name": manifest["space_name"],
            "space_hash": manifest.get("space_hash"),
            "resolution": manifest["resolution"], "backend": device["runtime"],
            "backend_version": device["runtime_version"], "threads": device["threads"],
            "clock": device.get("clock", "wall"), "device": device,
            "reference": {"entry": manifest["reference"]["key"], "ms": device["reference_ms"]}
            if device.get("reference_ms") else None,
            "overhead_ms": 0.0, "entries_in_space": None, "imported_from": str(folder)}
    model = LatencyModel(read_rows(out), meta, out)
    if len(nets) >= 2:
        meta["calibration"] = fit_calibration(model, [{"keys": n["key"][4:].split(","), "ms": float(n["median_ms"])}
                                                      for n in nets])
    atomic_write_text(Path(str(out) + ".meta.json"), json.dumps(meta, indent=1) + "\n")
    return LatencyModel(model.rows, meta, out)
