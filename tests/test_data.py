import pickle

import numpy as np
import pytest
import torch

from ghostnas import GhostNASError
from ghostnas.data import augment, load_data, prepare, stratified_split


def write_cifar(root, n=20):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ["data_batch_1", "data_batch_2", "test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 b"labels": [int(i % 10) for i in range(n)], b"batch_label": b"x"}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder


def write_folder(root, classes=("cat", "dog"), n=4, size=(20, 14)):
    from PIL import Image

    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            arr = np.full((size[1], size[0], 3), 40 * i, dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")


def test_mnist5k_embedded_and_seeded():
    a, b = load_data("mnist5k", seed=0), load_data("mnist5k", seed=0)
    assert (len(a.y_train), len(a.y_val), a.num_classes) == (4000, 1000, 10)
    assert torch.equal(a.y_val, b.y_val) and a.x_train.shape[1] == 3
    c = load_data("mnist5k", seed=1)
    assert not torch.equal(a.x_val, c.x_val)
    assert torch.bincount(a.y_val).tolist() == [100] * 10  # stratified


def test_mnist5k_clutter_is_fixed_and_keeps_each_digit():
    plain, a, b = load_data("mnist5k"), load_data("mnist5k-clutter"), load_data("mnist5k-clutter")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, plain.y_val)
    assert a.x_train.shape[-2:] == (36, 36) and a.x_val.shape[0] == 1000
    digit = plain.x_train[0, 0]  # the digit's full ink survives somewhere on the canvas
    canvas = a.x_train[0, 0]
    assert any(torch.all(canvas[r:r + 28, c:c + 28] >= digit) for r in range(9) for c in range(9))
    assert (canvas > 0).sum() > (digit > 0).sum()  # and there is clutter besides


def test_digits():
    d = load_data("digits")
    assert d.num_classes == 10 and len(d.y_train) + len(d.y_val) == 1797


def test_cifar10_layout(tmp_path):
    write_cifar(tmp_path)
    d = load_data(f"cifar10:{tmp_path}")
    assert (len(d.y_train), len(d.y_val), tuple(d.x_train.shape[1:])) == (40, 20, (3, 32, 32))
    d2 = load_data(f"cifar10:{tmp_path / 'cifar-10-batches-py'}")
    assert torch.equal(d.x_train, d2.x_train)


def test_cifar10_refuses_code_in_pickles(tmp_path):
    folder = write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(GhostNASError, match="test_batch: not a CIFAR-10 python batch.*refusing"):
        load_data(f"cifar10:{tmp_path}")


def test_cifar10_errors(tmp_path):
    with pytest.raises(GhostNASError, match="not a folder"):
        load_data(f"cifar10:{tmp_path / 'missing'}")
    with pytest.raises(GhostNASError, match="lacks data_batch_1..5"):
        load_data(f"cifar10:{tmp_path}")


def test_folder_flat_and_train_val(tmp_path):
    write_folder(tmp_path / "flat", n=5)
    d = load_data(f"folder:{tmp_path / 'flat'}", folder_size=16)
    assert d.num_classes == 2 and len(d.y_train) + len(d.y_val) == 10
    assert tuple(d.x_train.shape[1:]) == (3, 16, 16)
    write_folder(tmp_path / "split" / "train", n=3)
    write_folder(tmp_path / "split" / "val", n=2)
    d = load_data(f"folder:{tmp_path / 'split'}", folder_size=16)
    assert (len(d.y_train), len(d.y_val)) == (6, 4)


def test_folder_errors(tmp_path):
    write_folder(tmp_path / "bad")
    (tmp_path / "bad" / "cat" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(GhostNASError, match="cannot read image .*broken.png"):
        load_data(f"folder:{tmp_path / 'bad'}")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(GhostNASError, match="no images"):
        load_data(f"folder:{tmp_path / 'empty'}")


def test_unknown_spec():
    with pytest.raises(GhostNASError, match="unknown spec 'imagenet'.*mnist5k"):
        load_data("imagenet")


def test_split_and_augment_are_seeded():
    y = np.arange(100) % 5
    assert all((a == b).all() for a, b in zip(stratified_split(y, 0.2, 3), stratified_split(y, 0.2, 3)))
    d = load_data("synthetic:64")
    x = prepare(d.x_train, 32, *d.stats())
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)
