import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ghostnas import GhostNASError
from ghostnas.cli import main
from ghostnas.search import SearchConfig, parse_budget, parse_budgets, run_search


@pytest.mark.parametrize("text, kind, limit", [
    ("150MFLOPs", "macs", 150e6), ("0.3GFLOPs", "macs", 3e8), ("150MMACs", "macs", 150e6),
    ("5Mparams", "params", 5e6), ("800Kparams", "params", 8e5), ("30ms", "latency_ms", 30.0),
    (" 42 mflops ", "macs", 42e6)])
def test_budget_grammar(text, kind, limit):
    b = parse_budget(text)
    assert (b.kind, b.limit) == (kind, limit)


@pytest.mark.parametrize("text", ["150", "150MB", "fast", "-3MFLOPs", "30kms", "0MFLOPs"])
def test_malformed_budget_lists_accepted_forms(text):
    with pytest.raises(GhostNASError, match="150MFLOPs, 0.3GFLOPs, 150MMACs, 5Mparams"):
        parse_budget(text)


def test_a_budget_range_has_a_floor_in_the_same_unit():
    b = parse_budget("120-150MFLOPs")
    assert (b.kind, b.floor, b.limit) == ("macs", 120e6, 150e6)
    assert b.slug() == parse_budget("0.12-0.15GFLOPs").slug() == "120-150MFLOPs"  # one study either way
    assert parse_budget("150MFLOPs").slug() == "150MFLOPs"  # a plain budget's study keeps its name
    assert (parse_budget("2.5-3ms").floor, parse_budget("2.5-3ms").slug()) == (2.5, "2.5-3ms")
    assert b.over({"macs": 130e6}) is None
    assert "under the floor" in b.over({"macs": 110e6}) and ">" in b.over({"macs": 160e6})
    with pytest.raises(GhostNASError, match="must rise"):
        parse_budget("150-120MFLOPs")


def test_several_budgets():
    assert [b.kind for b in parse_budgets(["150MFLOPs,4Mparams"])] == ["macs", "params"]
    assert len(parse_budgets(["150MFLOPs", "4Mparams"])) == 2
    with pytest.raises(GhostNASError, match="same kind"):
        parse_budgets("150MFLOPs,100MMACs")


def tiny_config(tmp_path, **kw):
    base = dict(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke", trials=4,
                out=str(tmp_path), threads=1, progress=False, study="t")
    base.update(kw)
    return SearchConfig(**base)


def test_search_respects_budget_and_writes_results(tmp_path):
    summary = run_search(tiny_config(tmp_path))
    run = tmp_path / "t"
    df = pd.read_csv(run / "trials.csv")
    assert (df.state.isin(["complete", "pruned"])).sum() == 4
    assert (df.macs <= 3e6).all()
    assert summary["trials"]["rejected_over_budget"] > 0  # the tiny space spans 1.1-5.8M MACs
    assert {"best", "trials", "budgets"} <= set(summary)
    done = df[df.state == "complete"]
    assert summary["best"]["macs"] <= 3e6 and summary["best"]["val_acc"] == done.val_acc.max()
    from ghostnas.space import load_space

    labels = [name for name, _ in load_space("tiny").dimensions()]
    assert set(labels) <= set(df.columns)  # every flat label is a column, and it rebuilds the trial's Arch
    for name in ("trials.parquet", "pareto.csv", "summary.json", "acc_vs_macs.png", "config.json"):
        assert (run / name).exists(), name
    kept = {p.name for p in (run / "weights").glob("trial_*.pt")}
    best3 = done.sort_values(["val_acc", "macs"], ascending=[False, True]).number.head(3)
    assert kept == {f"trial_{n}.pt" for n in best3}  # exactly the best 3 keep weights


def test_resume_continues_to_the_requested_count(tmp_path):
    run_search(tiny_config(tmp_path, trials=2))
    first = pd.read_csv(tmp_path / "t" / "trials.csv")
    run_search(tiny_config(tmp_path, trials=4))
    second = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert len(second) == 4 and set(first.number) <= set(second.number)
    run_search(tiny_config(tmp_path, trials=4))  # nothing left to do
    assert len(pd.read_csv(tmp_path / "t" / "trials.csv")) == 4


def test_resume_with_other_settings_is_refused(tmp_path):
    run_search(tiny_config(tmp_path, trials=1))
    with pytest.raises(GhostNASError, match="made with other settings.*budgets"):
        run_search(tiny_config(tmp_path, budgets=("5MFLOPs",), trials=2))


def flaky_evaluator(monkeypatch, fail_on: int, error: Exception) -> None:
    """The proxy evaluator, raising ``error`` on its ``fail_on``-th call (1-based)."""
    from ghostnas.search.evaluators import ProxyEvaluator

    real = ProxyEvaluator.evaluate
    calls = {"n": 0}

    def flaky(self, arch, report=None, weights_path=None):
        calls["n"] += 1
        if calls["n"] == fail_on:
            raise error
        return real(self, arch, report, weights_path)

    monkeypatch.setattr(ProxyEvaluator, "evaluate", flaky)


def test_failing_trial_is_recorded_and_study_goes_on(tmp_path, monkeypatch):
    from ghostnas.train import TrainingFailed

    flaky_evaluator(monkeypatch, 2, TrainingFailed("loss became nan at epoch 1 step 0"))
    run_search(tiny_config(tmp_path, trials=3))
    df = pd.read_csv(tmp_path / "t" / "trials.csv")
    failed = df[df.state == "failed"]
    assert len(failed) == 1 and "nan" in failed.error.iloc[0]
    assert len(df) == 3


def test_user_error_in_a_trial_stops_the_search(tmp_path, monkeypatch):
    """A GhostNASError (bad data, a bad file) is not a trial failure to record and repeat: the
    search stops with its message, the trial is marked lost, and a resume redoes it."""
    flaky_evaluator(monkeypatch, 2, GhostNASError("data: a broken file; fix it"))
    with pytest.raises(GhostNASError, match="a broken file"):
        run_search(tiny_config(tmp_path, trials=3))
    df = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert list(df.state) == ["complete"]  # the lost trial is not a row, and nothing ran after it
    monkeypatch.undo()
    summary = run_search(tiny_config(tmp_path, trials=3))
    assert summary["trials"]["complete"] == 3


def test_budget_spellings_resume_the_same_study(tmp_path):
    run_search(tiny_config(tmp_path, budgets=("3MFLOPs",), trials=1))
    for spelling in ("0.003GFLOPs", "3mflops", "3MMACs"):
        summary = run_search(tiny_config(tmp_path, budgets=(spelling,), trials=1))
        assert summary["trials"]["complete"] == 1


def test_baseline_is_evaluated_first(tmp_path):
    cfg = SearchConfig(budgets=("50MFLOPs",), space="ghostnet", data="digits", protocol="smoke",
                       trials=1, out=str(tmp_path), threads=1, progress=False, study="b")
    summary = run_search(cfg)
    assert summary["baseline"]["trial"] == 0
    assert summary["baseline"]["macs"] == 42_328_152  # paper-0.5x: the widest that fits 50M
    # --confirm re-trains the best found network and the baseline on two more seeds
    summary = run_search(dataclasses.replace(cfg, trials=2, confirm=1))
    finalists = summary["confirmed"]["finalists"]
    assert sorted(f["baseline"] for f in finalists) == [False, True]
    assert all(len(f["val_accs"]) == 3 for f in finalists)
    assert "found_minus_baseline_points" in summary["confirmed"]
    # export best follows the confirmed order: the finalist with the best mean comes first
    from ghostnas.results import ranked_arch

    _, _, row = ranked_arch(tmp_path / "b", 1)
    assert summary["best"]["trial"] == int(row["number"])  # summary.json's best is export best's
    assert abs(row["val_acc_mean"] - max(f["val_acc_mean"] for f in finalists)) < 1e-4


def test_impossible_budget_fails_fast(tmp_path):
    with pytest.raises(GhostNASError, match="even the smallest is over"):
        run_search(tiny_config(tmp_path, budgets=("0.5MFLOPs",)))
    with pytest.raises(GhostNASError, match="reaches the floor of 6-7MFLOPs: even the largest"):
        run_search(tiny_config(tmp_path, budgets=("6-7MFLOPs",)))  # the tiny space tops out at 5.8M


def test_a_budget_floor_rejects_the_small_candidates(tmp_path):
    summary = run_search(tiny_config(tmp_path, budgets=("1.5-3MFLOPs",), trials=3))
    df = pd.read_csv(tmp_path / "t" / "trials.csv")
    from ghostnas.results import load_study

    assert len(df) == 3 and df.macs.between(1.5e6, 3e6).all()
    reasons = [t.user_attrs.get("rejected", "") for t in load_study(tmp_path / "t").trials]
    assert any("under the floor" in r for r in reasons)  # a quarter of the tiny space is under 1.5M
    assert summary["trials"]["rejected_over_budget"] == sum(bool(r) for r in reasons)


def test_sigkill_loses_only_the_running_trial(tmp_path):
    """Kill a search with SIGKILL mid-trial, resume it: finished trials are kept, the lost one is
    marked and redone, and the study reaches its count."""
    args = [sys.executable, "-m", "ghostnas", "search", "--budget", "3MFLOPs", "--space", "tiny",
            "--data", "digits", "--protocol", "smoke", "--epochs", "3", "--trials", "4",
            "--out", str(tmp_path), "--study", "k", "--threads", "1", "--json"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv_path = tmp_path / "k" / "trials.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if csv_path.exists() and len(pd.read_csv(csv_path)) >= 1:
            break
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = pd.read_csv(csv_path)
    assert 1 <= len(kept) < 4
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-500:]
    summary = json.loads(done.stdout)
    df = pd.read_csv(csv_path)
    assert set(kept[kept.state == "complete"].number) <= set(df.number)
    counted = df[~df.state.isin(["lost"])]
    assert len(counted) == 4
    assert summary["trials"].get("complete", 0) + summary["trials"].get("pruned", 0) >= 3


def test_cli_search_json_and_errors(capsys, tmp_path):
    code = main(["search", "--budget", "3MFLOPs", "--space", "tiny", "--data", "digits",
                 "--protocol", "smoke", "--trials", "2", "--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and {"arch", "params", "macs", "val_acc"} <= set(out["best"])
    code = main(["search", "--budget", "150 bananas", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "accepted forms" in err and err.count("\n") == 1
    code = main(["search", "--budget", "30ms", "--out", str(tmp_path)])
    assert code == 2 and "--lut" in capsys.readouterr().err
    code = main(["results", "show", "--out", str(tmp_path), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["best"]["macs"] <= 3e6


def test_export_best_and_names(capsys, tmp_path):
    main(["search", "--budget", "3MFLOPs", "--space", "tiny", "--data", "digits", "--protocol",
          "smoke", "--trials", "2", "--out", str(tmp_path / "runs"), "--json"])
    capsys.readouterr()
    code = main(["export", "best", "--runs", str(tmp_path / "runs"), "--format", "pt,onnx,torchscript",
                 "--out", str(tmp_path / "exp"), "--with-weights", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and set(report["files"]) == {"pt", "onnx", "torchscript"}
    assert all(f["max_rel_diff"] <= 1e-4 for f in report["files"].values())
    assert (tmp_path / "exp" / "arch.json").exists()
    code = main(["export", "paper-0.5x", "--format", "onnx", "--out", str(tmp_path / "p"),
                 "--num-classes", "7", "--resolution", "96", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["num_classes"] == 7
    code = main(["export", "paper-0.5x", "--format", "gif", "--out", str(tmp_path / "q")])
    assert code == 2 and "unknown format" in capsys.readouterr().err


def test_search_json_is_one_document_with_a_latency_budget(capsys, tmp_path):
    """--json prints exactly one JSON document on stdout; the latency check's lines (timed here or
    not) and any note about the table go to stderr."""
    lut = "results/luts/tiny-onnxruntime-1t.csv"
    code = main(["search", "--budget", "50ms", "--space", "tiny", "--data", "digits", "--protocol", "smoke",
                 "--trials", "2", "--lut", lut, "--runs", str(tmp_path), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)["best"]["latency_ms"] > 0, err


def test_export_refuses_weights_that_are_not_a_whole_ghostnet(capsys, tmp_path):
    import torch

    from ghostnas import create_model

    state = create_model("paper-0.5x").state_dict()
    cases = {"headless.pt": {k: v for k, v in state.items() if not k.startswith("classifier.")},
             "list.pt": [1, 2, 3],
             "other.pt": create_model("paper-1.0x").state_dict()}
    needles = {"headless.pt": "no 'classifier.weight'", "list.pt": "holds a list, not a state_dict",
               "other.pt": "weights of another network"}
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        out = tmp_path / f"exp-{name}"
        code = main(["export", "paper-0.5x", "--format", "pt", "--weights", str(tmp_path / name), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and needles[name] in err and err.count("\n") == 1, err
        assert not out.exists()


def test_export_tflite_when_installed(capsys, tmp_path):
    # paper-v2-1.0x covers both modules: its first two blocks are V1 Ghost bottlenecks, the rest DFC-gated
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    code = main(["export", "paper-v2-1.0x", "--format", "tflite", "--out", str(tmp_path / "t"),
                 "--resolution", "64", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["files"]["tflite"]["max_rel_diff"] <= 1e-4


def test_converter_output_is_held_back_unless_it_fails(capfd):
    """The TFLite converter's native progress logs stay off the terminal; a failure replays them."""
    from ghostnas.export import _quiet_unless_failing

    with _quiet_unless_failing():
        os.write(1, b"chatter-out\n")
        os.write(2, b"chatter-err\n")
        print("python-chatter")
    assert capfd.readouterr() == ("", "")
    with pytest.raises(ValueError), _quiet_unless_failing():
        os.write(2, b"cause-of-failure\n")
        raise ValueError("conversion failed")
    out, err = capfd.readouterr()
    assert out == "" and "cause-of-failure" in err


def test_pareto_search_records_both_objectives(tmp_path):
    summary = run_search(tiny_config(tmp_path, pareto=True, trials=3, study="p"))
    run = tmp_path / "p"
    df = pd.read_csv(run / "trials.csv")
    assert (df.state == "complete").sum() == 3  # multi-objective: nothing is pruned
    front = pd.read_csv(run / "pareto.csv")
    assert 1 <= len(front) <= 3
    # no trial on the front is beaten on both accuracy and MACs by another complete trial
    for _, f in front.iterrows():
        assert not ((df.val_acc > f.val_acc) & (df.macs < f.macs)).any()
    assert summary["best"]["macs"] <= 3e6


def test_prefilter_enqueues_zero_cost_winners(tmp_path):
    from ghostnas.results import load_study

    run_search(tiny_config(tmp_path, prefilter=6, trials=3, study="z"))
    trials = load_study(tmp_path / "z").trials
    scored = [t for t in trials if "prefilter" in t.user_attrs]
    assert scored and all(t.user_attrs["prefilter"].startswith("naswot=") for t in scored)
    assert all(t.user_attrs["macs"] <= 3e6 for t in scored)


def _search_args(tmp_path, study, trials):
    return [sys.executable, "-m", "ghostnas", "search", "--budget", "3MFLOPs", "--space", "tiny",
            "--data", "digits", "--protocol", "smoke", "--epochs", "2", "--trials", str(trials),
            "--out", str(tmp_path), "--study", study, "--threads", "1", "--json"]


def test_ctrl_c_stops_cleanly_keeping_finished_trials(tmp_path):
    proc = subprocess.Popen(_search_args(tmp_path, "c", 50), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    csv_path = tmp_path / "c" / "trials.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (csv_path.exists() and len(pd.read_csv(csv_path)) >= 1):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err, err[-3000:]
    df = pd.read_csv(csv_path)
    assert len(df[df.state.isin(["complete", "pruned"])]) >= 1
    assert not (df.state == "running").any()


@pytest.mark.parametrize("where", ["propose", "ask"])
def test_ctrl_c_between_trials_leaves_no_trial_running(tmp_path, monkeypatch, capsys, where):
    # CI once caught a Ctrl-C after ask() but before the evaluation: that trial stayed "running"
    import optuna

    import ghostnas.search.optuna_engine as engine

    calls = []
    if where == "propose":
        def hook(*args, **kwargs):
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            return real(*args, **kwargs)
        real = engine.propose
        monkeypatch.setattr(engine, "propose", hook)
    else:
        real_ask = optuna.Study.ask

        def ask(self, *args, **kwargs):
            trial = real_ask(self, *args, **kwargs)
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return trial
        monkeypatch.setattr(optuna.Study, "ask", ask)
    assert main(_search_args(tmp_path, "c", 5)[3:]) == 130
    assert "interrupted" in capsys.readouterr().err
    df = pd.read_csv(tmp_path / "c" / "trials.csv")
    assert len(df) >= 1 and not (df.state == "running").any(), df.state.tolist()


def test_ctrl_c_is_held_over_result_writes():
    from ghostnas.io import sigint_held, sigint_seen, sigint_watch

    finished = []
    with sigint_watch():
        with pytest.raises(KeyboardInterrupt):
            with sigint_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler has run by now
                finished.append(True)  # ...and the block went on to its end
        assert finished and sigint_seen()


def test_ctrl_c_turned_into_a_library_error_still_exits_130(monkeypatch, capsys):
    import ghostnas.cli.cmd_search
    from ghostnas.io import sigint_watch

    def results_show(args):
        with sigint_watch():
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            except KeyboardInterrupt:
                raise ValueError("a library's own error") from None  # as matplotlib did, 1 in ~150

    monkeypatch.setattr(ghostnas.cli.cmd_search, "results_show", results_show)
    assert main(["results", "show"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_kept_weights_spare_trials_still_running(tmp_path):
    # a Ray worker (or a cooperating process) saves its weights before its trial is told: pruning
    # the kept weights then must not delete them (CI once lost the best trial's weights so)
    import types

    from ghostnas.results import load_study
    from ghostnas.search.study import keep_best_weights

    assert main(_search_args(tmp_path, "w", 5)[3:]) == 0
    run = tmp_path / "w"
    study = load_study(run)
    kept = sorted(p.name for p in (run / "weights").glob("trial_*.pt"))
    in_flight = study.ask()
    (run / "weights" / f"trial_{in_flight.number}.pt").write_bytes(b"saved by a worker")
    (run / "weights" / "trial_999.pt").write_bytes(b"a finished trial's, not among the best")
    keep_best_weights(types.SimpleNamespace(run_dir=run, config=types.SimpleNamespace(confirm=0)), study)
    assert sorted(p.name for p in (run / "weights").glob("trial_*.pt")) == sorted(
        kept + [f"trial_{in_flight.number}.pt"])


def test_two_processes_cooperate_on_one_study(tmp_path):
    procs = [subprocess.Popen(_search_args(tmp_path, "shared", 6), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-500:]
    from ghostnas.results import load_study

    trials = load_study(tmp_path / "shared").trials
    evaluated = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED") and not t.user_attrs.get("rejected")]
    workers = {t.user_attrs["worker"] for t in evaluated}
    assert 6 <= len(evaluated) <= 7  # each worker stops at the count; at most one in flight overshoots
    assert len(workers) == 2


def test_evolution_children_are_mutated_copies_of_good_parents():
    import optuna

    from ghostnas.search.evolution import EvolutionSampler

    choices = list(range(10))
    sampler = EvolutionSampler(seed=0, population=8, tournament=8, mutations=1.0, n_startup_trials=8)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial):
        xs = [trial.suggest_categorical(f"x{i}", choices) for i in range(10)]
        return sum(xs)

    study.optimize(objective, n_trials=30)
    trials = study.trials
    startup_best = max(t.values[0] for t in trials[:8])
    for t in trials[8:]:  # the tournament spans the whole population: the parent is its best
        parents = [p for p in trials[:t.number] if p.state.name == "COMPLETE"][-8:]
        parent = max(parents, key=lambda p: p.values[0])
        changed = sum(t.params[k] != parent.params[k] for k in parent.params)
        assert changed <= 5  # about one label changed on average, never a fresh random sample
    assert study.best_value > startup_best  # selection + mutation climbs this easy objective


def test_confirm_under_another_protocol_ranks_by_it_alone(tmp_path):
    with pytest.raises(GhostNASError, match="unknown protocol"):  # before any trial, not after
        run_search(tiny_config(tmp_path, trials=2, study="bad", confirm=1, confirm_protocol="nope"))
    assert not (tmp_path / "bad" / "study.journal").exists()
    # trials train 2 epochs; the finalists are re-trained under plain smoke (1 epoch) on seeds 1-2
    cfg = tiny_config(tmp_path, trials=2, study="cp", epochs=2, confirm=1, confirm_seeds=2,
                      confirm_protocol="smoke")
    confirmed = run_search(cfg)["confirmed"]
    assert confirmed["protocol"] == "smoke" and confirmed["seeds_per_network"] == 2
    for f in confirmed["finalists"]:
        assert sorted(f["val_accs"]) == ["1", "2"]  # the trial's own 2-epoch score is not mixed in
    with pytest.raises(GhostNASError, match="--confirm-protocol"):
        run_search(dataclasses.replace(cfg, confirm_protocol=None))


def test_search_with_evolution_sampler(tmp_path):
    summary = run_search(tiny_config(tmp_path, sampler="evolution", trials=6, study="evo"))
    assert summary["best"]["macs"] <= 3e6
    with pytest.raises(GhostNASError, match="--pareto"):
        run_search(tiny_config(tmp_path, sampler="evolution", pareto=True, study="evo-p"))


def test_confirm_retrains_finalists_on_more_seeds_and_resumes(tmp_path, monkeypatch):
    summary = run_search(tiny_config(tmp_path, trials=3, study="c", confirm=1))
    confirmed = summary["confirmed"]
    assert confirmed["seeds_per_network"] == 3
    finalists = confirmed["finalists"]
    n_base = sum(f["baseline"] for f in finalists)
    assert n_base == ("baseline" in summary) and len(finalists) == 1 + n_base  # K=1 found + baseline
    for f in finalists:
        assert len(f["val_accs"]) == 3
        assert f["val_acc_mean"] == round(sum(f["val_accs"].values()) / 3, 4)
    if "found_minus_baseline_points" in confirmed:  # the lead comes with its seed uncertainty
        assert confirmed["found_minus_baseline_se_points"] >= 0
    assert json.loads((tmp_path / "c" / "confirm.json").read_text())
    import ghostnas.train

    def no_training(*args, **kwargs):
        raise AssertionError("a resumed confirm must not train again")

    monkeypatch.setattr(ghostnas.train, "train", no_training)
    again = run_search(tiny_config(tmp_path, trials=3, study="c", confirm=1))
    assert again["confirmed"] == confirmed


def test_se_of_difference_between_seed_means():
    from ghostnas.results import se_of_difference

    assert se_of_difference([0.5, 0.6, 0.7], [0.4, 0.4, 0.4]) == pytest.approx((0.01 / 3) ** 0.5)
    assert se_of_difference([0.5], [0.4, 0.5]) is None  # one run has no spread to read


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed (apt-get install "
                    "dataset-fashion-mnist; .ci/run installs it as root)")
def test_search_on_fashion_mnist_selects_on_validation_only(tmp_path, monkeypatch):
    """`ghostnas search --data fashion-mnist` end to end; the test split is never read."""
    from ghostnas.data import Dataset

    def no_test(self):
        raise AssertionError("the search read the test set")

    monkeypatch.setattr(Dataset, "for_test", no_test)
    summary = run_search(SearchConfig(budgets=("150MFLOPs",), data="fashion-mnist", protocol="proxy", epochs=1, trials=1,
                                      out=str(tmp_path), threads=1, progress=False, study="fm"))
    config = json.loads((tmp_path / "fm" / "config.json").read_text())
    assert config["identity"]["data"] == "fashion-mnist" and summary["trials"]["complete"] == 1
    assert summary["best"]["val_acc"] > 0.3  # ten clothing classes: chance is 0.1


def test_a_v2_space_search_reports_where_dfc_went(tmp_path):
    summary = run_search(tiny_config(tmp_path, space="tiny-v2", trials=3))
    best = summary["best"]
    labels = {k: v for k, v in best["arch"].items() if k.endswith("_attn")}
    assert labels and best["dfc_blocks"] == [k[:-5] for k, v in labels.items() if v == "dfc"]
