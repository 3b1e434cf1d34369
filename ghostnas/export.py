"""Write a model in deployment formats and prove each file computes what torch computes.

Formats: ``pt`` (state_dict, loads with ``torch.load(..., weights_only=True)``), ``torchscript``
(traced), ``onnx`` (opset 17+; the TorchScript-based exporter, ~7x faster here than
``dynamo=True``, which is the fallback), ``tflite`` (litert-torch; optional extra ``[tflite]``).
Every file is reloaded and run on the same seeded input at deployment resolution, batch 1; the
export fails when max |diff| exceeds 1e-4 relative to the largest output magnitude.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .arch import Arch, load_arch, save_arch
from .errors import GhostNASError
from .io import atomic_write, atomic_write_text, make_dir
from .nn.weights import load_tensors
from .nn.ghostnet import GhostNet, create_model

FORMATS = ("pt", "torchscript", "onnx", "tflite")
TOLERANCE = 1e-4  # relative


def _check(reference: np.ndarray, output: np.ndarray, what: str) -> dict[str, float]:
    diff = float(np.abs(reference - np.asarray(output, dtype=np.float32).reshape(reference.shape)).max())
    scale = float(np.abs(reference).max()) or 1.0
    rel = diff / scale
    if not rel <= TOLERANCE:
        raise GhostNASError(f"{what}: output differs from torch by {diff:.3g} ({rel:.3g} relative > "
                            f"{TOLERANCE}); the exported file is not trustworthy")
    return {"max_abs_diff": diff, "max_rel_diff": rel}


def _write_pt(model: GhostNet, x: torch.Tensor, path: Path) -> np.ndarray:
    atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))
    fresh = create_model(model.arch).eval()
    fresh.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    with torch.inference_mode():
        return fresh(x).numpy()


def _write_torchscript(model: GhostNet, x: torch.Tensor, path: Path) -> np.ndarray:
    with torch.inference_mode():
        traced = torch.jit.trace(model, x)
    atomic_write(path, lambda tmp: traced.save(str(tmp)))
    loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return loaded(x).numpy()


def export_onnx(model: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    """ONNX with input ``input`` and output ``logits``; written atomically."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

    def write(tmp: Path) -> None:
        try:
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["input"],
                              output_names=["logits"], opset_version=17)
        except Exception:  # the legacy exporter may be gone in a later torch
            torch.onnx.export(model, (x,), str(tmp), dynamo=True, input_names=["input"],
                              output_names=["logits"])

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise GhostNASError("ONNX export needs the onnx extra: pip install -e '.[onnx]'") from None
    atomic_write(path, write)


def _write_onnx(model: GhostNet, x: torch.Tensor, path: Path) -> np.ndarray:
    export_onnx(model, x, path)
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def export_tflite(model: torch.nn.Module, x: torch.Tensor, path: Path) -> None:
    try:
        import litert_torch
    except ImportError:
        raise GhostNASError("TFLite export needs the tflite extra (litert-torch, ~1 GB): "
                            "pip install -e '.[tflite]'") from None
    with _quiet_unless_failing():  # the converter floods the terminal with progress and warnings
        edge = litert_torch.convert(model.eval(), (x,))
        atomic_write(path, lambda tmp: edge.export(str(tmp)))


@contextlib.contextmanager
def _quiet_unless_failing():
    """Hold back what Python and native code write to stdout and stderr (file descriptors 1 and 2)
    inside the block; replay it on stderr only if the block raises, so a failure keeps its cause.
    Also keeps ``--json`` output parseable."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    failed = False
    with tempfile.TemporaryFile("w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        python_side = open(1, "w", closefd=False)  # now the sink too
        try:
            with contextlib.redirect_stdout(python_side), contextlib.redirect_stderr(python_side), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except BaseException:
            failed = True
            raise
        finally:
            python_side.close()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read()[-20000:].decode(errors="replace"))


def _write_tflite(model: GhostNet, x: torch.Tensor, path: Path) -> np.ndarray:
    export_tflite(model, x, path)
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], x.numpy().astype(inp["dtype"]))
    interp.invoke()
    return interp.get_tensor(interp.get_output_details()[0]["index"])


WRITERS = {"pt": ("model.pt", _write_pt), "torchscript": ("model.torchscript.pt", _write_torchscript),
           "onnx": ("model.onnx", _write_onnx), "tflite": ("model.tflite", _write_tflite)}


def load_state_dict_file(path: "str | os.PathLike[str]") -> dict[str, torch.Tensor]:
    """A GhostNet state dict from ``path``, loaded without running code (weights_only); one line
    when the file is something else."""
    state = load_tensors(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GhostNASError(f"{path}: holds a {type(state).__name__}, not a state_dict of tensors; "
                            "save one with torch.save(model.state_dict(), FILE)")
    if "classifier.weight" not in state:
        raise GhostNASError(f"{path}: this state_dict has no 'classifier.weight', so it is not a whole "
                            "GhostNet's; save the full model.state_dict()")
    return state


def export(arch: "Arch | str | os.PathLike[str]", formats: "str | list[str]", out_dir: "str | os.PathLike[str]",
           num_classes: int | None = None, weights: "str | os.PathLike[str] | None" = None,
           resolution: int | None = None) -> dict[str, Any]:
    """Export ``arch`` (random init, or ``weights``: a state_dict file) in each format to
    ``out_dir``; returns a report with each file and its verified max difference."""
    arch = load_arch(arch)
    fmts = [formats] if isinstance(formats, str) else list(formats)
    if not [f for f in fmts if f]:
        raise GhostNASError(f"no format given; choose from {', '.join(FORMATS)}")
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise GhostNASError(f"unknown format(s) {bad}; choose from {', '.join(FORMATS)}")
    state = None
    if weights:
        state = load_state_dict_file(weights)
        num_classes = num_classes or state["classifier.weight"].shape[0]
    if num_classes:
        arch = arch.replace(num_classes=num_classes)
    res = resolution or arch.resolution
    arch = arch.replace(resolution=res)
    torch.manual_seed(0)
    model = create_model(arch).eval()
    report: dict[str, Any] = {"arch": arch.name, "num_classes": arch.num_classes, "resolution": res,
                              "weights": str(weights) if weights else None, "files": {}}
    if state is not None:
        if state["classifier.weight"].shape[0] != arch.num_classes:  # new task: fresh classifier
            state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
            report["classifier"] = "re-initialised for the new num_classes"
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # same names, other shapes: another network's weights
            first = str(exc).split("size mismatch for ", 1)[-1].split("\n")[0].strip()
            raise GhostNASError(f"{weights}: weights of another network (size mismatch for {first}); "
                                "export the arch they were trained for") from None
        if unexpected or [k for k in missing if not k.startswith("classifier.")]:
            raise GhostNASError(f"{weights}: weights do not fit this arch (missing {missing[:3]}, "
                                f"unexpected {unexpected[:3]})")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise GhostNASError(f"--out {out} is a file; give a folder")
    # written and verified in a staging folder beside --out, then moved in: an interrupted or failed
    # export leaves no unverified model in --out
    staging = out.parent / f".{out.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    make_dir(staging, "--out")
    try:
        save_arch(arch, staging / "arch.json")
        x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            reference = model(x).numpy()
        for fmt in fmts:
            filename, writer = WRITERS[fmt]
            t = time.perf_counter()
            output = writer(model, x, staging / filename)
            report["files"][fmt] = {"path": str(out / filename), **_check(reference, output, f"{fmt} export"),
                                    "seconds": round(time.perf_counter() - t, 2),
                                    "bytes": (staging / filename).stat().st_size}
        atomic_write_text(staging / "export.json", json.dumps(report, indent=1) + "\n")
        make_dir(out, "--out")
        for f in sorted(staging.iterdir(), key=lambda f: f.name == "export.json"):  # export.json last
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report
