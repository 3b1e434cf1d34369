"""Image files on disk: class-folder trees listed (``list_image_tree``, also for ``folder:PATH``,
which decodes its images once into memory), and datasets read from their files while training:
``--data imagenet:PATH``.

ImageNet-1k's 1.28 million JPEGs do not fit in memory as tensors the way Fashion-MNIST's 70,000
images do (~190 GB as uint8 at 224 px), so each batch is decoded and augmented by DataLoader
workers as it is needed. Everything else (protocols, checkpoints, resume, the search's proxy
trials, ``ghostnas train --eval test``) is the in-memory trainer's; supernets and the zero-cost
prefilter still need data held in memory and say so.

Layout: ``PATH/train/<class>/<image>`` and ``PATH/val/<class>/<image>`` (ImageNet's 50,000
validation images sorted into class folders: the layout most ImageNet training scripts expect).
Splits, as for every dataset here: the search's validation split is carved from ``train``
(stratified, seeded, ``VAL_PER_CLASS`` images a class: 10,000 for ImageNet-1k) and ``PATH/val``
serves as the test set, used only to report (``for_test``).

Transforms (the common ImageNet recipe, written with Pillow: torchvision is not a dependency):
training takes a random resized crop (area 8-100%, aspect 3/4-4/3) at the protocol's resolution
and a horizontal flip; evaluation resizes the shorter side to resolution / 0.875 and takes the
centre crop. Pixels are normalised with ImageNet's mean and std. Each image's crop and flip come
from (seed, epoch, image index), so a run does not depend on the number of workers.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .errors import GhostNASError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
MEAN = (0.485, 0.456, 0.406)  # ImageNet's, the convention for networks trained on it
STD = (0.229, 0.224, 0.225)
VAL_PER_CLASS = 10  # the search's validation split, carved from train
CROP_FRACTION = 0.875  # evaluation: shorter side to resolution / 0.875, then the centre crop


def default_workers() -> int:
    """Processes decoding images for a training: ``GHOSTNAS_WORKERS``, else min(8, cores)."""
    value = os.environ.get("GHOSTNAS_WORKERS", "")
    if value:
        if not value.isdigit():
            raise GhostNASError(f"GHOSTNAS_WORKERS={value!r}: give a whole number (0: decode in the training process)")
        return int(value)
    return min(8, os.cpu_count() or 1)


@dataclass
class StreamDataset:
    """The in-memory ``Dataset``'s interface over file lists: labels are tensors, images are paths
    (``x_*``) decoded batch by batch (``batches``)."""

    name: str
    x_train: list[str]
    y_train: torch.Tensor
    x_val: list[str]
    y_val: torch.Tensor
    num_classes: int
    x_test: list[str] | None = None  # the official validation set, for reporting only
    y_test: torch.Tensor | None = None
    scored_on: str = "val"
    natural: bool = True
    workers: int = field(default_factory=default_workers)

    def for_test(self) -> "StreamDataset":
        """Train on every training image, score on the test set (ImageNet's official validation)."""
        if self.x_test is None or self.y_test is None:
            raise GhostNASError(f"data {self.name!r} has no test set; give PATH with train/ and val/")
        return dataclasses.replace(self, x_train=self.x_train + self.x_val,
                                   y_train=torch.cat([self.y_train, self.y_val]),
                                   x_val=self.x_test, y_val=self.y_test, scored_on="test")

    def stats(self):
        raise GhostNASError(f"{self.name} streams its images from files; supernets and --prefilter need data "
                            "held in memory: search it with the proxy evaluator, without --prefilter")

    def describe(self) -> dict:
        return {"name": self.name, "train": len(self.y_train), self.scored_on: len(self.y_val),
                "scored_on": self.scored_on, "classes": self.num_classes, "size": "files"}

    def batches(self, split: str, indices: torch.Tensor, resolution: int, batch_size: int, *, train: bool,
                seed: int = 0, epoch: int = 0, device: torch.device | str = "cpu"
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Normalised float batches of ``split``'s images at ``indices``, in that order, on ``device``."""
        files, labels = (self.x_train, self.y_train) if split == "train" else (self.x_val, self.y_val)
        order = indices.tolist()
        sampler = [order[b:b + batch_size] for b in range(0, len(order), batch_size)]
        device = torch.device(device)
        loader = torch.utils.data.DataLoader(
            _Images(files, labels, resolution, train, seed, epoch), batch_sampler=sampler,
            num_workers=self.workers, pin_memory=device.type == "cuda")
        for xb, yb in loader:
            yield xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)


class _Images(torch.utils.data.Dataset):
    def __init__(self, files: list[str], labels: torch.Tensor, resolution: int, train: bool, seed: int, epoch: int):
        self.files, self.labels = files, labels
        self.resolution, self.train, self.seed, self.epoch = resolution, train, seed, epoch
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image, UnidentifiedImageError

        r = self.resolution
        try:
            with Image.open(self.files[i]) as im:
                im = im.convert("RGB")
                if self.train:
                    rng = random.Random(f"{self.seed}|{self.epoch}|{i}")
                    im = im.resize((r, r), Image.BILINEAR, box=random_resized_crop(im.size, rng))
                    if rng.random() < 0.5:
                        im = im.transpose(Image.FLIP_LEFT_RIGHT)
                else:
                    im = im.resize((r, r), Image.BILINEAR, box=centre_crop(im.size, r))
                pixels = np.asarray(im, dtype=np.uint8)
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
            raise GhostNASError(f"cannot read image {self.files[i]} ({exc}); remove or replace it") from None
        x = torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div_(255.0)
        return (x - self.mean) / self.std, self.labels[i]


def random_resized_crop(size: tuple[int, int], rng: random.Random, scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> tuple[float, float, float, float]:
    """A box (left, top, right, bottom) of a random share of the area and aspect ratio, as the
    Inception / ResNet recipe draws it; the centre crop of the image when 10 draws miss."""
    w, h = size
    for _ in range(10):
        area = w * h * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
            return left, top, left + cw, top + ch
    side = min(w, h)
    return (w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2


def centre_crop(size: tuple[int, int], resolution: int) -> tuple[float, float, float, float]:
    """The box that resizing the shorter side to resolution / CROP_FRACTION and cropping the
    centre resolution x resolution would keep, in the original image's pixels."""
    w, h = size
    side = min(w, h) * CROP_FRACTION
    return (w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2


def list_image_tree(root: Path, classes: list[str] | None, what: str) -> tuple[list[str], list[int], list[str]]:
    """The image files under ``root/CLASS/`` (any depth) with their labels, and the classes:
    ``classes`` when given (another split's; a class it lacks is refused), else the folders."""
    found = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    classes = classes or found
    if not classes:
        raise GhostNASError(f"{what}: {root} has no class sub-folders; expected {root}/CLASS/IMAGE")
    unknown = set(found) - set(classes)
    if unknown:
        raise GhostNASError(f"{what}: {root} has classes {sorted(unknown)[:3]} that train/ lacks")
    files: list[str] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        names = sorted(os.path.join(folder, f) for folder, _, fs in os.walk(root / cls)
                       for f in fs if os.path.splitext(f)[1].lower() in IMAGE_SUFFIXES)
        files += names
        labels += [label] * len(names)
    if not files:
        raise GhostNASError(f"{what}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    return files, labels, classes


def load_imagenet(root: Path, seed: int) -> StreamDataset:
    """``imagenet:PATH``: the file lists (not the images) of PATH/train and PATH/val."""
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise GhostNASError(f"imagenet: {root / split} is not a folder; expected PATH/train/CLASS/IMAGE "
                                "and PATH/val/CLASS/IMAGE")
    train_files, train_labels, classes = list_image_tree(root / "train", None, "imagenet")
    test_files, test_labels, _ = list_image_tree(root / "val", classes, "imagenet")
    y = np.asarray(train_labels, dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() <= VAL_PER_CLASS:
        raise GhostNASError(f"imagenet: class {classes[int(counts.argmin())]!r} has {counts.min()} training images; "
                            f"each needs more than {VAL_PER_CLASS} (that many go to the validation split)")
    rng = np.random.default_rng(seed)
    va = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:VAL_PER_CLASS] for c in range(len(classes))]))
    tr = np.setdiff1d(np.arange(len(y)), va)
    return StreamDataset(f"imagenet:{root.name}", [train_files[i] for i in tr], torch.from_numpy(y[tr]),
                         [train_files[i] for i in va], torch.from_numpy(y[va]), len(classes),
                         x_test=test_files, y_test=torch.tensor(test_labels, dtype=torch.int64))
