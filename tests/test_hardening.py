"""Hostile input: every refused command is one line and exit 2 (or the library's one error type),
and loses, overwrites or leaves behind no file. Numbers refer to the hardening issue's items."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ghostnas import GhostNASError
from ghostnas.cli import main
from ghostnas.search import SearchConfig, run_search

TINY = ["--budget", "3MFLOPs", "--space", "tiny", "--data", "digits", "--protocol", "smoke"]


def files_under(folder: Path) -> dict[str, float]:
    return {str(p.relative_to(folder)): p.stat().st_mtime for p in folder.rglob("*")} if folder.exists() else {}


def refused(capsys, argv: list[str], folder: Path) -> str:
    """Run the CLI; assert exit 2 with one line, and that ``folder`` did not change. Returns stderr."""
    before = files_under(folder)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses a bad option value itself (exit 2, usage + one line)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert files_under(folder) == before, "a refused command changed files"
    return err


@pytest.mark.parametrize("argv", [
    ["search", *TINY, "--timeout", "-5"],
    ["search", *TINY, "--prefilter", "-3"],
    ["search", *TINY, "--threads", "0"],
    ["search", *TINY, "--seed=-1"],
    ["search", *TINY, "--trials", "0"],
    ["search", *TINY, "--study", "../escaped"],
    ["search", *TINY, "--study", "a/b"],
    ["search", *TINY, "--engine", "ray", "--cpus-per-trial", "0"],
    ["results", "show", "--top", "-1"],
    ["export", "paper-0.5x", "--format", "", "--out", "x"],
    ["lut", "build", "--space", "tiny", "--max-entries", "0", "--out", "t.csv"],
    ["lut", "build", "--space", "tiny", "--threads", "0", "--out", "t.csv"],
    ["lut", "check", "--lut", "results/luts/tiny-onnxruntime-1t.csv", "--n", "0"],
    ["train", "paper-0.5x", "--epochs", "0"],
    ["train", "paper-0.5x", "--threads=-1"],
    ["train", "paper-0.5x", "--batch-size", "0"],
    ["train", "paper-0.5x", "--lr=-1"],
    ["train", "paper-0.5x", "--resolution", "0"],
    ["train", "paper-0.5x", "--device", "tpu"],
    ["train", "paper-0.5x", "--subset", "0"],
])
def test_bad_numbers_and_names_are_refused_where_read(capsys, tmp_path, monkeypatch, argv):
    """Items 8, 9, 16, 17, 18, 19: refused by the option's type, before anything runs or is written."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results" / "luts").mkdir(parents=True)
    err = refused(capsys, argv, tmp_path)
    assert "error:" in err


def test_the_library_refuses_what_the_cli_would(tmp_path):
    for bad in ({"seed": -1}, {"timeout": -5.0}, {"epochs": 0}, {"prefilter": -3}, {"threads": 0},
                {"cpus_per_trial": 0.0}, {"study": "../escaped"}):
        cfg = SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke", trials=1,
                           out=str(tmp_path), progress=False, **({"study": "t"} | bad))
        with pytest.raises(GhostNASError):
            run_search(cfg)
    assert files_under(tmp_path) == {}  # item 17: no journal or config.json left behind


def test_refused_resume_leaves_the_run_untouched(capsys, tmp_path):
    """Item 1: `train --resume` on another network's run is refused before arch.json is written."""
    run = tmp_path / "run"
    assert main(["train", "paper-0.5x", "--data", "digits", "--protocol", "smoke", "--out", str(run)]) == 0
    capsys.readouterr()
    err = refused(capsys, ["train", "paper-1.0x", "--data", "digits", "--protocol", "smoke", "--out", str(run),
                           "--resume"], run)
    assert "checkpoint is for another arch" in err
    assert json.loads((run / "arch.json").read_text())["name"] == "paper-0.5x"


def test_outputs_that_are_files_are_refused(capsys, tmp_path):
    """Item 20: --out / --runs naming an existing file."""
    f = tmp_path / "a-file"
    f.write_text("keep me")
    for argv in (["export", "paper-0.5x", "--format", "pt", "--out", str(f)],
                 ["search", *TINY, "--trials", "1", "--runs", str(f)],
                 ["train", "paper-0.5x", "--data", "digits", "--protocol", "smoke", "--out", str(f)],
                 ["arch", "sample", "--seed", "1", "--out", str(f / "x.json")],
                 ["lut", "build", "--space", "tiny", "--out", str(f / "t.csv")]):
        err = refused(capsys, argv, tmp_path)
        assert err.count("\n") == 1 and str(f) in err, err
    assert f.read_text() == "keep me"


def test_torn_journal_tail_is_set_aside_before_appending(tmp_path, capsys):
    """Item 2: a writer killed mid-record; the next search repairs the tail, then appends."""
    cfg = SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke", trials=1,
                       out=str(tmp_path), threads=1, progress=False, study="t")
    run_search(cfg)
    journal = tmp_path / "t" / "study.journal"
    with open(journal, "a") as fh:
        fh.write('{"op_code":6,"worker_id":"x","trial_id":9,"sta')
    summary = run_search(SearchConfig(**{**cfg.__dict__, "trials": 2}))
    assert summary["trials"]["complete"] == 2
    assert journal.read_bytes().endswith(b"\n")
    assert (tmp_path / "t" / "study.journal.torn").read_text().startswith('{"op_code":6')
    assert main(["results", "show", "--runs", str(tmp_path), "--study", "t", "--json"]) == 0


def test_a_damaged_journal_record_is_one_line(capsys, tmp_path):
    """Item 22: a record with an unknown op code."""
    cfg = SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke", trials=1,
                       out=str(tmp_path), threads=1, progress=False, study="t")
    run_search(cfg)
    capsys.readouterr()
    with open(tmp_path / "t" / "study.journal", "a") as fh:
        fh.write('{"op_code":99,"worker_id":"x"}\n')
    err = refused(capsys, ["results", "show", "--runs", str(tmp_path), "--study", "t"], tmp_path)
    assert "a record cannot be read" in err and err.count("\n") == 1


def test_a_dead_peers_trial_is_recognised_before_the_study_is_done(tmp_path, monkeypatch):
    """Item 3: a peer killed mid-trial leaves a RUNNING trial; the survivor marks it lost and redoes
    the work instead of reporting the study finished with a running trial."""
    import socket

    from ghostnas.results import load_study
    from ghostnas.search.evaluators import ProxyEvaluator

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    real = ProxyEvaluator.evaluate
    calls = {"n": 0}

    def evaluate_and_a_peer_dies(self, arch, report=None, weights_path=None):
        calls["n"] += 1
        if calls["n"] == 1:  # meanwhile a peer took a trial and was killed
            study = load_study(tmp_path / "t")
            trial = study.ask()
            trial.set_user_attr("worker", f"{socket.gethostname()}:{dead}")
        return real(self, arch, report, weights_path)

    monkeypatch.setattr(ProxyEvaluator, "evaluate", evaluate_and_a_peer_dies)
    summary = run_search(SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke",
                                      trials=3, out=str(tmp_path), threads=1, progress=False, study="t"))
    assert summary["trials"].get("complete") == 3 and "running" not in summary["trials"]
    df = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert set(df.state) <= {"complete", "lost", "pruned", "failed"} and (df.state == "lost").sum() == 1


def test_data_that_cannot_be_learnt_is_refused(tmp_path):
    """Items 7, 12, 13, 14."""
    from PIL import Image

    from ghostnas.data import load_data

    one = tmp_path / "one" / "cat"
    one.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(one / f"{i}.png")
    with pytest.raises(GhostNASError, match="1 class.*at least 2"):
        load_data(f"folder:{tmp_path / 'one'}")
    split = tmp_path / "split"
    for part, classes in (("train", ("a", "b")), ("val", ("a",))):
        for c in classes:
            (split / part / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(np.full((8, 8, 3), i * 40, np.uint8)).save(split / part / c / f"{i}.png")
    (split / "val" / "b").mkdir()
    with pytest.raises(GhostNASError, match="no image of class 'b'"):
        load_data(f"folder:{split}")
    for spec in ("synthetic:0", "synthetic:-5", "synthetic:1"):
        with pytest.raises(GhostNASError, match="synthetic"):
            load_data(spec)


def test_decompression_bombs_and_foreign_cifar_labels(tmp_path, monkeypatch):
    import pickle

    from PIL import Image

    from ghostnas.data import load_data

    folder = tmp_path / "f"
    for c in ("a", "b"):
        (folder / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / c / f"{i}.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40x40 is then a "bomb", as 20000x20000 is
    with pytest.raises(GhostNASError, match="cannot read image"):
        load_data(f"folder:{folder}")
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    for name in ("data_batch_1", "test_batch"):
        batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 10]}
        (cifar / name).write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(GhostNASError, match="label 10 outside CIFAR-10's 0-9"):
        load_data(f"cifar10:{tmp_path}")


def test_arch_sizes_are_bounded(tmp_path):
    """Item 11: channels of 10^12, or 10,000 blocks, are refused before anything is allocated."""
    from ghostnas.arch import load_arch, paper_arch

    data = paper_arch(1.0).to_dict()
    data["stages"][0][0]["exp"] = 10**12
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    with pytest.raises(GhostNASError, match=r"exp.*\[1, 16384\]"):
        load_arch(path)
    data = paper_arch(1.0).to_dict()
    data["stages"] = [data["stages"][1] * 5000]
    path.write_text(json.dumps(data))
    with pytest.raises(GhostNASError, match="at most 128 blocks"):
        load_arch(path)


def test_arch_defaults_are_said(tmp_path, capsys):
    from ghostnas.arch import load_arch, paper_arch

    data = paper_arch(1.0).to_dict()
    del data["resolution"]
    del data["stages"][0][0]["k"]
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    load_arch(path)
    err = capsys.readouterr().err
    assert "no resolution, k given; using the defaults" in err and err.count("\n") == 1


def test_interrupted_export_leaves_no_unverified_model(tmp_path, monkeypatch):
    import ghostnas.export as ex

    def broken(model, x, path):
        path.write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setitem(ex.WRITERS, "onnx", ("model.onnx", broken))
    with pytest.raises(KeyboardInterrupt):
        ex.export("paper-0.5x", ["pt", "onnx"], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))
    report = ex.export("paper-0.5x", ["pt"], tmp_path / "out")
    assert set(p.name for p in (tmp_path / "out").iterdir()) == {"arch.json", "model.pt", "export.json"}
    assert report["files"]["pt"]["path"] == str(tmp_path / "out" / "model.pt")


def test_results_show_writes_nothing(tmp_path, capsys):
    run_search(SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke", trials=1,
                            out=str(tmp_path), threads=1, progress=False, study="t"))
    before = files_under(tmp_path)
    assert main(["results", "show", "--runs", str(tmp_path)]) == 0
    assert files_under(tmp_path) == before


def test_state_dict_pickles_are_refused_in_one_line(tmp_path, capsys):
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"classifier.weight": Evil()}, tmp_path / "evil.pt")
    err = refused(capsys, ["export", "paper-0.5x", "--format", "pt", "--weights", str(tmp_path / "evil.pt"),
                           "--out", str(tmp_path / "o")], tmp_path)
    assert "it holds Python objects, not only tensors, so it was not loaded" in err and err.count("\n") == 1
