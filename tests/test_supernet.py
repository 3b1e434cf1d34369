"""The weight-sharing supernet: a network taken out of it is a plain create_model(arch) network
whose outputs equal the supernet's for that arch, every dimension of the space shares weights as
documented, training resumes bit-identically, and a tiny supernet trains and searches in seconds."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from ghostnas import GhostNASError, create_model
from ghostnas.space import load_space
from ghostnas.supernet import SuperNet, get_supernet_protocol, recalibrate, train_supernet


@pytest.fixture(scope="module")
def ghostnet_supernet():
    torch.manual_seed(0)
    return SuperNet(load_space("ghostnet"), 10).eval()


def labels_varying(space, name, value, base_seed=0):
    labels = space.sample(base_seed)
    labels[name] = value
    return labels


def test_extracted_networks_equal_the_supernet_for_every_dimension(ghostnet_supernet):
    space, net = ghostnet_supernet.space, ghostnet_supernet
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    checked = set()
    for name, choices in space.dimensions():  # each choice of each label at least once
        field = name.rsplit("_", 1)[-1]
        if field in checked and field not in ("depth",):
            continue
        checked.add(field)
        for value in choices:
            arch = space.to_arch(labels_varying(space, name, value)).replace(resolution=32)
            model = net.extract(arch).eval()
            assert isinstance(model, type(create_model(arch)))
            assert set(model.state_dict()) == set(create_model(arch, num_classes=10).state_dict())
            with torch.no_grad():
                torch.testing.assert_close(net(x, arch), model(x), rtol=0, atol=0)
    assert {"width", "depth", "exp", "k", "se", "s", "d"} <= checked


def test_every_dimension_shares_weights(ghostnet_supernet):
    space, net = ghostnet_supernet.space, ghostnet_supernet
    base = space.sample(3)

    def state(**changes):
        return net.subnet_state(space.to_arch({**base, **changes}), with_buffers=False)

    k_label = next(n for n, _ in space.dimensions() if n.endswith("_k") and space.active(base, n))
    stage, block = k_label.split("_")[:2]
    key = f"blocks.{stage[1:]}.{block[1:]}." + ("conv_dw.weight" if f"blocks.{stage[1:]}.{block[1:]}.conv_dw.weight"
                                                in state() else "shortcut.0.weight")
    k3, k7 = state(**{k_label: 3})[key], state(**{k_label: 7})[key]
    assert torch.equal(k3, k7[..., 2:5, 2:5])  # a smaller kernel is the centre of the larger
    s_label = "s6_s"
    p2 = state(**{s_label: 2})["blocks.6.0.ghost1.primary_conv.0.weight"]
    p4 = state(**{s_label: 4})["blocks.6.0.ghost1.primary_conv.0.weight"]
    assert torch.equal(p4, p2[: p4.shape[0]])  # every s shares the primary conv's first channels
    c2 = state(**{s_label: 2})["blocks.6.0.ghost1.cheap_operation.0.weight"]
    c3 = state(**{s_label: 3})["blocks.6.0.ghost1.cheap_operation.0.weight"]
    assert torch.equal(c3[0::2], c2[: len(c3[0::2])])  # the first map of each primary channel is shared
    d1 = state(s6_d=1)["blocks.6.0.ghost1.cheap_operation.0.weight"]
    d5 = state(s6_d=5)["blocks.6.0.ghost1.cheap_operation.0.weight"]
    assert torch.equal(d1, d5[..., 2:3, 2:3])
    narrow, wide = state(width=min(space.width)), state(width=max(space.width))
    assert torch.equal(narrow["conv_stem.weight"], wide["conv_stem.weight"][: narrow["conv_stem.weight"].shape[0]])
    shallow, deep = state(s6_depth=min(space.stages[6].depth)), state(s6_depth=max(space.stages[6].depth))
    assert all(torch.equal(v, deep[k]) for k, v in shallow.items() if k.startswith("blocks.6."))
    se_label = next(n for n, _ in space.dimensions() if n.endswith("_se"))
    on, off = state(**{se_label: True}), state(**{se_label: False})
    assert any(".se." in k for k in on) and len(on) > len(off)


def test_gradients_reach_the_shared_weights(ghostnet_supernet):
    net = SuperNet(ghostnet_supernet.space, 10).train()
    arch = net.space.sample_arch(5).replace(dropout=0.0)
    net(torch.randn(4, 3, 32, 32), arch).logsumexp(1).sum().backward()
    got = [p for p in net.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(got) > 50 and net.conv_stem__weight.grad is not None


def test_the_largest_network_is_the_costliest():
    from ghostnas.cost import count

    space = load_space("ghostnet")
    largest = count(space.to_arch(space.largest_labels())).macs
    assert all(count(space.sample_arch(s)).macs <= largest for s in range(50))


def test_recalibration_computes_exact_statistics():
    model = create_model("paper-0.5x", num_classes=10)
    images = torch.randn(300, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    recalibrate(model, images, batch_size=100)
    with torch.no_grad():
        first = model.conv_stem(images)
    torch.testing.assert_close(model.bn1.running_mean, first.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
    assert not model.training


def test_training_resumes_bit_identically(tmp_path, interrupt_after):
    from ghostnas.data import load_data

    space, data = load_space("tiny"), load_data("digits")
    p = get_supernet_protocol("smoke", epochs=2)
    train_supernet(space, data, p, tmp_path / "a")
    with pytest.raises(interrupt_after.error):
        train_supernet(space, data, p, tmp_path / "b", on_epoch=interrupt_after(1))
    with pytest.raises(GhostNASError, match="add --resume"):
        train_supernet(space, data, p, tmp_path / "b")
    record = train_supernet(space, data, p, tmp_path / "b", resume=True)
    a = torch.load(tmp_path / "a" / "supernet.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "supernet.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert record["epochs_done"] == 2 and json.loads((tmp_path / "a" / "supernet.json").read_text())["digest"] == \
        record["digest"]
    other = dataclasses.replace(p, lr=0.05)
    with pytest.raises(GhostNASError, match=r"trained with lr 0.1 \(asked: 0.05\); resume with the settings"):
        train_supernet(space, data, other, tmp_path / "b", resume=True)
    with pytest.raises(GhostNASError, match=r"trained with recipe 'smoke' \(asked: 'uniform'\), distill True \(asked: False\)"):
        train_supernet(space, data, get_supernet_protocol("uniform", epochs=2, train_subset=p.train_subset,
                                                          batch_size=p.batch_size), tmp_path / "b", resume=True)


def test_progressive_recipe_trains_the_largest_alone_first():
    from ghostnas.supernet.training import _subnets

    space = load_space("tiny")
    p = get_supernet_protocol("progressive", epochs=8)
    largest = space.to_arch(space.largest_labels()).replace(dropout=0.0)
    assert p.largest_epochs() == 2
    assert [(k, a) for k, a in _subnets(space, p, 2, 5)] == [("largest", largest)]
    assert [k for k, _ in _subnets(space, p, 3, 0)] == ["largest", "smallest", "random", "random"]
    # the field is absent from the other recipes' records: supernets trained before it resume
    assert "largest_share" not in get_supernet_protocol("sandwich").to_dict()


def test_a_tiny_supernet_trains_and_searches_in_seconds(tmp_path, capsys):
    from ghostnas.cli import main

    sn = tmp_path / "sn"
    assert main(["supernet", "train", "--space", "tiny", "--data", "digits", "--recipe", "smoke", "--out", str(sn),
                 "--threads", "1", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["epochs"] == 1 and (sn / "supernet.pt").exists()
    # no --space: a search with a supernet takes the space it was trained over
    argv = ["search", "--supernet", str(sn), "--data", "digits", "--budget", "3MFLOPs",
            "--runs", str(tmp_path / "runs"), "--study", "s", "--threads", "1", "--json"]
    assert main(argv + ["--space", "tiny-v2", "--trials", "1"]) == 2
    assert "leave out --space" in capsys.readouterr().err
    assert main(argv + ["--trials", "12"]) == 0
    summary = json.loads(capsys.readouterr().out)
    import pandas as pd

    df = pd.read_csv(tmp_path / "runs" / "s" / "trials.csv")
    assert summary["trials"]["complete"] == 12 and set(df.evaluator) == {"supernet"}
    assert df.seconds.median() < 2.0  # seconds, not a training
    # --confirm trains the finalists stand-alone on seeds 0-2: a supernet score is no seed's run
    assert main(argv + ["--trials", "12", "--confirm", "1"]) == 0
    capsys.readouterr()
    confirm = json.loads((tmp_path / "runs" / "s" / "confirm.json").read_text())
    assert confirm and all(set(e["val_accs"]) == {"0", "1", "2"} for e in confirm.values())  # tiny: no baseline
    # the best trial's recalibrated inherited weights are kept and export
    assert main(["export", "best", "--runs", str(tmp_path / "runs"), "--study", "s", "--with-weights",
                 "--format", "pt", "--out", str(tmp_path / "exp"), "--json"]) == 0
    capsys.readouterr()
    # resuming with another supernet is refused (its weights, not its folder name, define the study)
    assert main(["supernet", "train", "--space", "tiny", "--data", "digits", "--recipe", "smoke", "--seed", "1",
                 "--out", str(tmp_path / "other"), "--json"]) == 0
    capsys.readouterr()
    import shutil

    shutil.rmtree(sn)
    shutil.copytree(tmp_path / "other", sn)
    assert main(argv + ["--trials", "13"]) == 2
    assert "other settings" in capsys.readouterr().err
    # another dataset than the supernet's is refused (its weights fit no other data)
    assert main(argv[:4] + ["mnist5k"] + argv[5:] + ["--study", "t", "--trials", "1"]) == 2
    assert "was trained on 'digits'" in capsys.readouterr().err


def test_a_supernet_search_scores_on_the_split_the_supernet_left_out(tmp_path, capsys):
    from ghostnas.cli import main
    from ghostnas.data import load_data
    from ghostnas.search import SearchConfig
    from ghostnas.search.context import load_evaluator, make_context

    sn = tmp_path / "sn"  # split seed 1: the search's default protocol would split by seed 0
    assert main(["supernet", "train", "--space", "tiny", "--data", "digits", "--recipe", "smoke", "--seed", "1",
                 "--out", str(sn), "--json"]) == 0
    ctx = make_context(SearchConfig(budgets=("3MFLOPs",), data="digits", supernet=str(sn), out=str(tmp_path)))
    load_evaluator(ctx)
    trained_on, seed0 = load_data("digits", seed=1), load_data("digits", seed=0)
    assert torch.equal(ctx.data.y_val, trained_on.y_val) and torch.equal(ctx.data.x_val, trained_on.x_val)
    assert not torch.equal(seed0.x_val, trained_on.x_val)


def test_train_can_start_from_inherited_weights(tmp_path, capsys):
    from ghostnas.cli import main

    sn = tmp_path / "sn"
    assert main(["supernet", "train", "--space", "tiny", "--data", "digits", "--recipe", "smoke", "--out", str(sn),
                 "--json"]) == 0
    space = load_space("tiny")
    arch_path = tmp_path / "a.json"
    arch_path.write_text(space.to_arch(space.sample(2), name="a").to_json())
    capsys.readouterr()
    assert main(["train", str(arch_path), "--data", "digits", "--protocol", "smoke", "--init", f"supernet:{sn}",
                 "--out", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["init"] == f"supernet:{sn}"
    assert main(["train", "paper-0.5x", "--data", "digits", "--protocol", "smoke", "--init", f"supernet:{sn}",
                 "--out", str(tmp_path / "run2")]) == 2
    assert "not a network of the supernet's space" in capsys.readouterr().err
    # the evaluator's fine-tuning experiment: a few steps from the inherited weights, the same
    # images for every candidate, so a score is repeatable, and it moves the score
    from ghostnas.data import load_data
    from ghostnas.search.evaluators import SupernetEvaluator

    data = load_data("digits", seed=0)
    arch = space.to_arch(space.sample(2))
    plain = SupernetEvaluator(sn, data, 32).evaluate(arch)
    tuned = [SupernetEvaluator(sn, data, 32, finetune_steps=3).evaluate(arch) for _ in range(2)]
    assert tuned[0]["finetune_steps"] == 3 and "finetune_steps" not in plain
    assert (tuned[0]["val_acc"], tuned[0]["val_loss"]) == (tuned[1]["val_acc"], tuned[1]["val_loss"])
    assert tuned[0]["val_loss"] != plain["val_loss"]


def test_the_supernet_covers_dfc_attention():
    space = load_space("tiny-v2")
    net = SuperNet(space, 10).eval()
    x = torch.randn(2, 3, 64, 64)
    for seed in range(8):
        arch = space.sample_arch(seed)
        with torch.no_grad():
            torch.testing.assert_close(net(x, arch), net.extract(arch).eval()(x), rtol=0, atol=0)
    labels = space.sample(0)
    on = net.subnet_state(space.to_arch({**labels, "s3_b0_attn": "dfc"}), with_buffers=False)
    off = net.subnet_state(space.to_arch({**labels, "s3_b0_attn": "v1"}), with_buffers=False)
    assert "blocks.3.0.ghost1.short_conv.2.weight" in on
    assert not any(k.startswith("blocks.3.0.ghost1.short_conv") for k in off)
