import pickle

import numpy as np
import pytest
import torch

from ghostnas import GhostNASError
from ghostnas.data import FASHION_MNIST_DIR, IDX_FILES, augment, load_data, prepare, stratified_split
from ghostnas.idx import read_idx, write_idx


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
    # validation carved from the 40 training images (one per class here); test_batch is the test set
    assert (len(d.y_train), len(d.y_val), len(d.y_test), tuple(d.x_train.shape[1:])) == (30, 10, 20, (3, 32, 32))
    assert d.for_test().scored_on == "test" and len(d.for_test().y_train) == 40
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


def write_idx_set(folder, n_train=60, n_test=20, compress=True, size=28):
    """A tiny MNIST-layout folder: 10 classes, images that encode their label."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = (np.arange(n) % 10).astype(np.uint8)
        x = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", x, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", y, compress)
    return folder


@pytest.mark.parametrize("compress", [True, False])
def test_idx_dataset_three_splits(tmp_path, compress):
    write_idx_set(tmp_path / "fm", compress=compress)
    d = load_data(f"fashion-mnist:{tmp_path / 'fm'}")
    assert (len(d.y_train), len(d.y_val), len(d.y_test), d.num_classes) == (50, 10, 20, 10)
    assert d.scored_on == "val" and tuple(d.x_train.shape[1:]) == (3, 28, 28)
    # the validation split is fixed whatever the training seed: it is part of the data
    assert torch.equal(load_data(f"fashion-mnist:{tmp_path / 'fm'}", seed=5).y_val, d.y_val)
    assert torch.bincount(d.y_val).tolist() == [1] * 10  # stratified: a fifth of 6 per class
    t = d.for_test()
    assert (len(t.y_train), len(t.y_val), t.scored_on) == (60, 20, "test")
    assert load_data(f"mnist:{tmp_path / 'fm'}").name == "mnist"


def test_idx_reader_round_trip_and_rejects_bad_files(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a)
    write_idx(tmp_path / "a.gz", a, compress=True)
    assert np.array_equal(read_idx(tmp_path / "a"), a) and np.array_equal(read_idx(tmp_path / "a.gz"), a)
    raw = (tmp_path / "a").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-5])
    with pytest.raises(GhostNASError, match="short: truncated: header 2x3x4 needs 24 bytes of data, file has 19"):
        read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x89PNG" + raw[4:])
    with pytest.raises(GhostNASError, match="not an IDX file"):
        read_idx(tmp_path / "magic")
    (tmp_path / "type").write_bytes(b"\x00\x00\x07\x03" + raw[4:])
    with pytest.raises(GhostNASError, match="unknown IDX type code 0x07"):
        read_idx(tmp_path / "type")
    (tmp_path / "header").write_bytes(raw[:6])
    with pytest.raises(GhostNASError, match="truncated IDX header"):
        read_idx(tmp_path / "header")
    (tmp_path / "gz").write_bytes((tmp_path / "a.gz").read_bytes()[:-8])
    with pytest.raises(GhostNASError, match="gz: .*download the file again"):
        read_idx(tmp_path / "gz")


def test_idx_dataset_errors(tmp_path):
    with pytest.raises(GhostNASError, match="apt-get install dataset-fashion-mnist"):
        load_data(f"fashion-mnist:{tmp_path / 'nowhere'}")
    folder = write_idx_set(tmp_path / "fm")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(GhostNASError, match="t10k-labels-idx1-ubyte\\[.gz\\] is missing; install it"):
        load_data(f"fashion-mnist:{folder}")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(7, np.uint8))  # raw beside gz files
    with pytest.raises(GhostNASError, match="holds 20 images but t10k-labels-idx1-ubyte 7 labels"):
        load_data(f"fashion-mnist:{folder}")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.full(20, 12, np.uint8))
    with pytest.raises(GhostNASError, match="label 12 outside 0-9"):
        load_data(f"fashion-mnist:{folder}")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros((20, 2), np.uint8))
    with pytest.raises(GhostNASError, match="1-D list of byte labels"):
        load_data(f"fashion-mnist:{folder}")


@pytest.mark.skipif(not all(any((__import__("pathlib").Path(FASHION_MNIST_DIR) / (f + s)).exists()
                                    for s in (".gz", "")) for f in IDX_FILES),
                    reason=f"Fashion-MNIST not installed at {FASHION_MNIST_DIR} "
                    "(apt-get install dataset-fashion-mnist; .ci/run installs it as root)")
def test_real_fashion_mnist_loads_fast_with_official_splits():
    import time

    start = time.perf_counter()
    d = load_data("fashion-mnist")
    seconds = time.perf_counter() - start
    assert (len(d.y_train), len(d.y_val), len(d.y_test)) == (50_000, 10_000, 10_000)
    assert torch.bincount(d.y_val).tolist() == [1000] * 10 and torch.bincount(d.y_test).tolist() == [1000] * 10
    assert seconds < 5, f"loading took {seconds:.1f} s"


def write_imagenet(root, classes=("n01", "n02", "n03"), n_train=13, n_val=2):
    """An ImageNet-layout tree of small JPEGs of different sizes, each class its own colour."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for k, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                w, h = int(rng.integers(24, 60)), int(rng.integers(24, 60))
                arr = np.clip(rng.normal(60 + 70 * k, 30, (h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{c}_{i}.JPEG", quality=90)
    return root


def test_imagenet_streams_files_with_its_splits_and_seeded_crops(tmp_path):
    import dataclasses

    from ghostnas.stream import VAL_PER_CLASS

    data = load_data(f"imagenet:{write_imagenet(tmp_path / 'inet')}", seed=0)
    assert data.num_classes == 3 and data.scored_on == "val"
    # the search's validation split: VAL_PER_CLASS a class, carved from train; val/ is the test set
    assert torch.bincount(data.y_val).tolist() == [VAL_PER_CLASS] * 3 and len(data.y_train) == 3 * (13 - VAL_PER_CLASS)
    assert not set(data.x_val) & set(data.x_train) and len(data.x_test) == 6
    test = data.for_test()
    assert test.scored_on == "test" and len(test.y_train) == 39 and test.x_val == data.x_test

    idx = torch.arange(len(data.y_train))
    data.workers = 0  # decoded in this process; then by two worker processes
    first = list(data.batches("train", idx, 32, 4, train=True, seed=1, epoch=2))
    assert [tuple(x.shape) for x, _ in first] == [(4, 3, 32, 32), (4, 3, 32, 32), (1, 3, 32, 32)]
    again = list(dataclasses.replace(data, workers=2).batches("train", idx, 32, 4, train=True, seed=1, epoch=2))
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, again))  # whatever the worker count
    other = list(data.batches("train", idx, 32, 4, train=True, seed=1, epoch=3))
    assert not torch.equal(first[0][0], other[0][0])  # another epoch, other crops
    x, y = next(data.batches("val", torch.arange(6), 32, 6, train=False))
    assert y.tolist() == data.y_val[:6].tolist() and abs(float(x.mean())) < 3  # normalised
    with pytest.raises(GhostNASError, match="streams its images"):
        data.stats()  # supernets and --prefilter need data in memory: one line, not a traceback


def test_imagenet_trains_and_resumes_like_data_in_memory(tmp_path):
    from ghostnas.train import get_protocol, train

    data = load_data(f"imagenet:{write_imagenet(tmp_path / 'inet')}", seed=0).for_test()
    data.workers = 0
    p = get_protocol("smoke", epochs=2, batch_size=8, resolution=32, train_subset=None, val_subset=None)
    whole = train("paper-0.5x", data, p)
    assert whole.scored_on == "test" and 0 <= whole.val_acc <= 1 and len(whole.history) == 2

    stopped = tmp_path / "ck"
    with pytest.raises(RuntimeError, match="stop"):
        train("paper-0.5x", data, p, out_dir=stopped, on_epoch=lambda e, a: (_ for _ in ()).throw(RuntimeError("stop")))
    resumed = train("paper-0.5x", data, p, out_dir=stopped, resume=True)
    assert [h["val_acc"] for h in resumed.history] == [h["val_acc"] for h in whole.history]
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in whole.history]


@pytest.mark.parametrize("make, error", [
    (lambda root: root, "is not a folder"),
    (lambda root: write_imagenet(root, n_train=5), "each needs more than"),
    (lambda root: (write_imagenet(root), (root / "val" / "n99").mkdir())[0], "that train/ lacks"),
])
def test_imagenet_layout_problems_are_one_line(tmp_path, make, error):
    root = make(tmp_path / "inet")
    with pytest.raises(GhostNASError, match=error):
        load_data(f"imagenet:{root}")
