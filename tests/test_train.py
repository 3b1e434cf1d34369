import json

import pytest
import torch

from ghostnas.cli import main
from ghostnas.data import load_data, prepare
from ghostnas.space import load_space
from ghostnas.train import TrainingFailed, get_protocol, train
from ghostnas.zero_cost import SCORERS, score

SMOKE = get_protocol("smoke")


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def test_same_seed_same_result(digits):
    a = train("paper-0.5x", digits, SMOKE)
    b = train("paper-0.5x", digits, SMOKE)
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert strip(a.history) == strip(b.history)
    assert a.val_acc == b.val_acc and a.protocol == SMOKE.to_dict()


def test_a_checkpointed_run_stopped_part_way_resumes_where_it_stopped(digits, tmp_path, interrupt_after):
    from ghostnas.train import train_checkpointed

    p = SMOKE.replace(epochs=2)
    straight = train("paper-0.5x", digits, p)
    with pytest.raises(interrupt_after.error):
        train_checkpointed("paper-0.5x", digits, p, folder=tmp_path, on_epoch=interrupt_after(1))
    assert len(list(tmp_path.glob("*/checkpoint.pt"))) == 1  # epoch 1 kept
    seen = []
    resumed = train_checkpointed("paper-0.5x", digits, p, folder=tmp_path, on_epoch=lambda e, a: seen.append(e))
    assert seen == [2] and resumed.val_acc == straight.val_acc  # only epoch 2 ran, same result
    assert resumed.seconds == pytest.approx(sum(h["seconds"] for h in resumed.history))  # both sessions
    assert list(tmp_path.iterdir()) == []  # finished: its folder removed


def test_per_epoch_callback_and_small_inputs(digits):
    seen = []
    train("paper-0.5x", digits, SMOKE.replace(epochs=2, resolution=28), on_epoch=lambda e, acc: seen.append(e))
    assert seen == [1, 2]


def test_resume_equals_uninterrupted(digits, tmp_path, interrupt_after):
    p = SMOKE.replace(epochs=2)
    straight = train("paper-0.5x", digits, p, keep_model=True)

    with pytest.raises(interrupt_after.error):
        train("paper-0.5x", digits, p, out_dir=tmp_path, on_epoch=interrupt_after(1))
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "metrics.csv").exists()
    resumed = train("paper-0.5x", digits, p, out_dir=tmp_path, resume=True, keep_model=True)
    assert [h["val_acc"] for h in resumed.history] == [h["val_acc"] for h in straight.history]
    for (k, v), (_, w) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_fp16_resume_restores_the_loss_scale(digits, tmp_path, interrupt_after, monkeypatch):
    """fp16 training keeps a GradScaler whose scale adapts; a resumed run must start from the scale
    the interrupted one reached, not from the default. Exercised on the CPU with fp16 autocast
    standing in for a GPU's (the same code path; test_gpu.py runs it on CUDA)."""
    import ghostnas.train as tr

    monkeypatch.setattr(tr, "amp_dtype_for", lambda device: torch.float16)
    p = SMOKE.replace(epochs=2)
    space = load_space("tiny")
    arch = space.to_arch(space.smallest_labels())  # CPU fp16 is slow: the smallest network
    straight = train(arch, digits, p, out_dir=tmp_path / "a")
    with pytest.raises(interrupt_after.error):
        train(arch, digits, p, out_dir=tmp_path / "b", on_epoch=interrupt_after(1))
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["scaler"] and "scale" in state["scaler"]
    resumed = train(arch, digits, p, out_dir=tmp_path / "b", resume=True)
    assert [h["val_acc"] for h in resumed.history] == [h["val_acc"] for h in straight.history]
    final_a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    final_b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert final_a["scaler"] == final_b["scaler"]


def test_nan_loss_fails_the_trial(digits):
    with pytest.raises(TrainingFailed, match="loss became"):
        train("paper-0.5x", digits, SMOKE.replace(lr=1e12, warmup_epochs=0))


def test_zero_cost_scorers_fast_and_discriminating(digits):
    import time

    x = prepare(digits.x_train[:64], 32, *digits.stats())
    y = digits.y_train[:64]
    space = load_space("ghostnet")
    for method in SCORERS:
        values = []
        for seed in range(3):
            t = time.process_time()  # CPU seconds of all threads: a busy machine does not inflate it
            values.append(score(space.sample_arch(seed), x, y, 10, method))
            assert time.process_time() - t < 2.0 * torch.get_num_threads()  # < 1 s wall alone
        assert all(v == v and abs(v) != float("inf") for v in values)
        assert len(set(values)) == 3


def test_train_cli_deterministic_and_learns(capsys, tmp_path):
    """The issue's check: `ghostnas train paper-0.5x --data mnist5k --epochs 2 --seed 0 --json`
    learns; the same command twice gives the same result (on digits: the same path, a tenth the time)."""
    def run(out, data, epochs):
        assert main(["train", "paper-0.5x", "--data", data, "--epochs", epochs, "--seed", "0",
                     "--json", "--out", str(tmp_path / out)]) == 0
        return json.loads(capsys.readouterr().out)

    learned = run("run0", "mnist5k", "2")
    assert learned["val_acc"] > 0.5  # chance is 0.1
    assert learned["epochs"] == 2 and learned["seconds"] > 0
    assert (tmp_path / "run0" / "model.pt").exists()
    sd = torch.load(tmp_path / "run0" / "model.pt", weights_only=True)
    assert "blocks.6.3.ghost1.primary_conv.0.weight" in sd
    first, second = run("d1", "digits", "1"), run("d2", "digits", "1")
    assert first["val_acc"] == second["val_acc"]
    a, b = (torch.load(tmp_path / d / "model.pt", weights_only=True) for d in ("d1", "d2"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # the same weights, bit for bit


def randomise_batchnorm(model: torch.nn.Module, seed: int) -> None:
    """BN statistics and affine terms far from their defaults, so a fold that ignored them shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                for t, low, high in ((m.running_mean, -0.5, 0.5), (m.running_var, 0.5, 2.0),
                                     (m.weight, 0.5, 1.5), (m.bias, -0.2, 0.2)):
                    t.copy_(low + (high - low) * torch.rand(t.shape, generator=g))


@pytest.mark.parametrize("arch", ["paper-v2-1.0x", *[f"sample:{i}" for i in range(2)]])
def test_reparam_branches_merge_into_the_plain_network_with_equal_outputs(arch):
    from ghostnas import create_model
    from ghostnas.nn.reparam import RepConvBN, add_branches, merge_branches

    if arch.startswith("sample:"):  # every s (identity branch only at s = 2), d, k, DFC, stride
        arch = load_space("ghostnet").sample_arch(int(arch.split(":")[1]))
    plain = create_model(arch, num_classes=10)
    model = add_branches(create_model(arch, num_classes=10), 3)
    reps = [m for m in model.modules() if isinstance(m, RepConvBN)]
    assert reps and all(len(r.convs) == 3 for r in reps)
    assert any(r.identity is not None for r in reps) and any(r.scale is not None for r in reps)
    randomise_batchnorm(model, 0)
    merged = merge_branches(model.eval())
    assert merged.state_dict().keys() == plain.state_dict().keys()  # the plain layout: export, LUT, cost
    assert all(merged.state_dict()[k].shape == v.shape for k, v in plain.state_dict().items())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = model(x), merged(x)
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5


@pytest.mark.parametrize("arch", ["paper-v2-1.0x", "sample:3"])
def test_folding_batchnorm_into_the_convs_keeps_the_outputs(arch):
    import copy

    from ghostnas import create_model
    from ghostnas.nn.reparam import fold_batchnorm

    if arch.startswith("sample:"):
        arch = load_space("ghostnet").sample_arch(int(arch.split(":")[1]))
    model = create_model(arch, num_classes=10)
    randomise_batchnorm(model, 2)
    folded = fold_batchnorm(copy.deepcopy(model).eval())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())  # every BN follows a conv
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = model.eval()(x), folded(x)
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5


def test_train_with_reparam_saves_the_merged_plain_network(capsys, tmp_path):
    from ghostnas import create_model

    code = main(["train", "paper-0.5x", "--data", "digits", "--protocol", "smoke", "--reparam", "2",
                 "--json", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"]["reparam"] == 2
    model = create_model("paper-0.5x", num_classes=10)
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))  # strict: plain keys
    assert "reparam" not in get_protocol("smoke").to_dict()  # off: records from before it are unchanged
    with pytest.raises(SystemExit) as exc:  # argparse refuses it: exit 2 and one line
        main(["train", "paper-0.5x", "--data", "digits", "--reparam", "9", "--out", str(tmp_path / "b")])
    assert exc.value.code == 2 and "0 to 8" in capsys.readouterr().err
