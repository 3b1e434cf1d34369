"""The built torch model against the analytic counts, the authors' layout and an independent
functional re-implementation written from the paper's description."""

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ghostnas import count, create_model, load_arch, paper_arch
from ghostnas.nn.ghostnet import full_kernels
from ghostnas.space import load_space

PAPER = [("paper-0.5x", 2_587_292), ("paper-1.0x", 5_182_508), ("paper-1.3x", 7_358_820)]
# GhostNetV2: params and MACs measured from the official code (1x3x224x224, conv + linear MACs)
PAPER_V2 = [("paper-v2-1.0x", 6_156_908, 167.0e6), ("paper-v2-1.3x", 8_960_404, 269.3e6),
            ("paper-v2-1.6x", 12_392_698, 398.6e6)]


def conv_linear_macs(model, resolution):
    with FlopCounterMode(display=False) as counter, full_kernels():
        model(torch.zeros(1, 3, resolution, resolution))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("name, params", PAPER)
def test_paper_models_exact(name, params):
    model = create_model(name).eval()
    assert sum(p.numel() for p in model.parameters()) == params
    assert conv_linear_macs(model, 224) == count(name).macs
    assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 1000)


@pytest.mark.parametrize("name, params, macs", PAPER_V2)
def test_paper_v2_models_exact(name, params, macs):
    model = create_model(name).eval()
    assert sum(p.numel() for p in model.parameters()) == params == count(name).params
    assert conv_linear_macs(model, 224) == count(name).macs
    assert abs(count(name).macs - macs) / macs < 1e-3  # the published figures are rounded to 0.1M
    sd = model.state_dict()
    assert len(sd) == 764  # the official code's state dict
    dfc = sorted({k.split(".short_conv")[0] for k in sd if ".short_conv." in k})
    assert dfc[0] == "blocks.2.0.ghost1" and len(dfc) == 14 and all(k.endswith("ghost1") for k in dfc)
    assert sd["blocks.8.0.ghost1.short_conv.2.weight"].shape[-2:] == (1, 5)


@pytest.mark.parametrize("name", [n for n, _ in PAPER])
def test_state_dict_layout(name):
    sd = create_model(name).state_dict()
    assert len(sd) == 512
    keys = set(sd)
    for key in ["conv_stem.weight", "bn1.running_var", "blocks.0.0.ghost1.primary_conv.0.weight",
                "blocks.0.0.ghost1.cheap_operation.1.bias", "blocks.1.0.conv_dw.weight",
                "blocks.1.0.bn_dw.weight", "blocks.3.0.se.conv_reduce.bias",
                "blocks.3.0.se.conv_expand.weight", "blocks.1.0.shortcut.3.running_mean",
                "blocks.8.3.ghost2.primary_conv.1.weight", "blocks.9.0.conv.weight",
                "blocks.9.0.bn1.bias", "conv_head.bias", "classifier.weight"]:
        assert key in keys, key
    assert "blocks.2.0.shortcut.0.weight" not in keys  # identity shortcut
    assert "blocks.0.0.conv_dw.weight" not in keys  # stride 1: no depthwise conv
    width = {"paper-0.5x": 0.5, "paper-1.0x": 1.0, "paper-1.3x": 1.3}[name]
    stem = {0.5: 8, 1.0: 16, 1.3: 20}[width]
    assert sd["conv_stem.weight"].shape == (stem, 3, 3, 3)
    assert sd["blocks.9.0.conv.weight"].shape[0] == {0.5: 480, 1.0: 960, 1.3: 1248}[width]
    assert sd["conv_head.weight"].shape == (1280, sd["blocks.9.0.conv.weight"].shape[0], 1, 1)
    if width == 1.0:
        assert sd["blocks.3.0.se.conv_reduce.weight"].shape == (20, 72, 1, 1)
        assert sd["blocks.6.3.ghost1.primary_conv.0.weight"].shape == (240, 80, 1, 1)
        assert sd["blocks.6.3.ghost1.cheap_operation.0.weight"].shape == (240, 1, 3, 3)


def test_strict_load_round_trip():
    torch.manual_seed(0)
    a = create_model("paper-1.0x").eval()
    b = create_model("paper-1.0x").eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    assert torch.equal(a(x), b(x))


def test_other_s_d_keep_keys_with_other_shapes():
    arch = paper_arch(1.0)
    stages = tuple(tuple(b.__class__(**{**b.__dict__, "s": 3, "d": 5}) for b in st) for st in arch.stages)
    sd = create_model(arch.replace(stages=stages)).state_dict()
    assert set(sd) == set(create_model(arch).state_dict())
    assert sd["blocks.6.3.ghost1.primary_conv.0.weight"].shape == (160, 80, 1, 1)  # ceil(480/3)
    assert sd["blocks.6.3.ghost1.cheap_operation.0.weight"].shape == (320, 1, 5, 5)


def test_analytic_equals_built_model_on_random_archs():
    """60 random Archs of the default space: params always, conv+linear MACs at assorted
    (including odd) resolutions, against FlopCounterMode."""
    space = load_space("ghostnet")
    rng = random.Random(0)
    drawn = set()
    for seed in range(60):  # every choice of every dimension is drawn by seed 22 (asserted below)
        labels = space.sample(seed)
        drawn |= set(labels.items())
        arch = space.to_arch(labels).replace(num_classes=rng.choice([10, 100, 1000]))
        model = create_model(arch).eval()
        assert sum(p.numel() for p in model.parameters()) == count(arch).params, seed
        resolution = rng.choice([32, 33, 47, 64, 96])
        assert conv_linear_macs(model, resolution) == count(arch, resolution=resolution).macs, seed
    assert drawn == {(name, c) for name, choices in space.dimensions() for c in choices}


def test_thop_cross_check():
    import thop

    def zero(module, inputs, output):
        module.total_ops += torch.zeros(1, dtype=torch.float64)

    space = load_space("ghostnet")
    for seed in range(5):
        arch = space.sample_arch(seed)
        macs, params = thop.profile(create_model(arch).eval(), inputs=(torch.zeros(1, 3, 64, 64),),
                                    verbose=False, custom_ops={nn.BatchNorm2d: zero, nn.ReLU: zero,
                                                               nn.AdaptiveAvgPool2d: zero})
        cost = count(arch, resolution=64)
        assert (int(macs), int(params)) == (cost.macs, cost.params)


# ---- an independent forward from the reference text, on the state dict alone --------------

def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                        sd[p + ".bias"], training=False, eps=1e-5)


def _ghost(x, sd, p, out, relu):
    w1 = sd[p + ".primary_conv.0.weight"]
    x1 = _bn(F.conv2d(x, w1), sd, p + ".primary_conv.1")
    x1 = F.relu(x1) if relu else x1
    w2 = sd[p + ".cheap_operation.0.weight"]
    x2 = _bn(F.conv2d(x1, w2, padding=w2.shape[-1] // 2, groups=x1.shape[1]), sd, p + ".cheap_operation.1")
    x2 = F.relu(x2) if relu else x2
    y = torch.cat([x1, x2], 1)[:, :out]
    if p + ".short_conv.0.weight" in sd:  # GhostNetV2's DFC attention, from the official code's description
        a = _bn(F.conv2d(F.avg_pool2d(x, 2, 2), sd[p + ".short_conv.0.weight"]), sd, p + ".short_conv.1")
        a = _bn(F.conv2d(a, sd[p + ".short_conv.2.weight"], padding=(0, 2), groups=out), sd, p + ".short_conv.3")
        a = _bn(F.conv2d(a, sd[p + ".short_conv.4.weight"], padding=(2, 0), groups=out), sd, p + ".short_conv.5")
        y = y * F.interpolate(torch.sigmoid(a), size=y.shape[-2:], mode="nearest")
    return y


def reference_forward(arch, sd, x):
    r = arch.resolve()
    x = F.relu(_bn(F.conv2d(x, sd["conv_stem.weight"], stride=2, padding=1), sd, "bn1"))
    for b in r.blocks:
        p = f"blocks.{b.stage}.{b.index}"
        y = _ghost(x, sd, p + ".ghost1", b.mid, True)
        if b.stride == 2:
            y = _bn(F.conv2d(y, sd[p + ".conv_dw.weight"], stride=2, padding=b.k // 2, groups=b.mid), sd, p + ".bn_dw")
        if b.se_channels:
            g = F.relu(F.conv2d(y.mean((2, 3), keepdim=True), sd[p + ".se.conv_reduce.weight"], sd[p + ".se.conv_reduce.bias"]))
            g = F.conv2d(g, sd[p + ".se.conv_expand.weight"], sd[p + ".se.conv_expand.bias"])
            y = y * (F.relu6(g + 3) / 6)
        y = _ghost(y, sd, p + ".ghost2", b.cout, False)
        if b.cin == b.cout and b.stride == 1:
            x = y + x
        else:
            s = _bn(F.conv2d(x, sd[p + ".shortcut.0.weight"], stride=b.stride, padding=b.k // 2, groups=b.cin), sd, p + ".shortcut.1")
            x = y + _bn(F.conv2d(s, sd[p + ".shortcut.2.weight"]), sd, p + ".shortcut.3")
    n = r.num_stages
    x = F.relu(_bn(F.conv2d(x, sd[f"blocks.{n}.0.conv.weight"]), sd, f"blocks.{n}.0.bn1"))
    x = F.relu(F.conv2d(x.mean((2, 3), keepdim=True), sd["conv_head.weight"], sd["conv_head.bias"]))
    return F.linear(x.flatten(1), sd["classifier.weight"], sd["classifier.bias"])


@pytest.mark.parametrize("arch", ["paper-1.0x", "paper-v2-1.0x", "random"])
def test_outputs_match_independent_reference(arch):
    torch.manual_seed(1)
    a = load_space("ghostnet").sample_arch(11) if arch == "random" else load_arch(arch)
    model = create_model(a).eval()
    with torch.no_grad():  # random BN statistics so BN is not an identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
        x = torch.randn(2, 3, 96, 96)
        ours = model(x)
        ref = reference_forward(a, model.state_dict(), x)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel, stride", [(3, 1), (5, 1), (7, 2), ((1, 5), 1), ((5, 1), 1), (5, 2)])
def test_depthwise_conv_skips_only_padding_taps(kernel, stride):
    """On maps smaller than the kernel, DepthwiseConv2d runs a cropped kernel: outputs and both
    gradients equal the full kernel's (bias included), in either memory format, and the crop
    does happen."""
    from ghostnas.nn.ghostnet import DepthwiseConv2d

    torch.manual_seed(0)
    conv = DepthwiseConv2d(6, 12, kernel, stride, groups=6)  # a multiplier of 2, as a cheap operation
    conv.bias = torch.nn.Parameter(torch.randn(12))  # as fold_batchnorm leaves it
    kh, kw = conv.kernel_size
    for h, w in [(1, 1), (2, 2), (1, 3), (3, 2), (4, 4), (9, 9)]:
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(3, 6, h, w).contiguous(memory_format=fmt).requires_grad_()
            with full_kernels():
                full = conv(x)
            (g_x_full, g_w_full) = torch.autograd.grad(full.square().sum(), (x, conv.weight))
            fast = conv(x)
            g_x, g_w = torch.autograd.grad(fast.square().sum(), (x, conv.weight))
            torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(g_x, g_x_full, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(g_w, g_w_full, rtol=1e-5, atol=1e-5)
    with FlopCounterMode(display=False) as cropped:
        conv(torch.zeros(1, 6, 1, 1))
    with FlopCounterMode(display=False) as whole, full_kernels():
        conv(torch.zeros(1, 6, 1, 1))
    assert cropped.get_total_flops() * kh * kw == whole.get_total_flops()


def test_small_inputs_pass_every_stride():
    model = create_model("paper-0.5x", num_classes=10).eval()
    for size in (28, 32):
        assert model(torch.randn(1, 3, size, size)).shape == (1, 10)


def test_v2_exports_verified(tmp_path):
    """paper-v2-1.0x through the verified writers (ONNX: average pool, sigmoid, nearest upsample)."""
    from ghostnas.export import export

    report = export("paper-v2-1.0x", ["pt", "onnx"], tmp_path / "v2", num_classes=10, resolution=96)
    assert set(report["files"]) == {"pt", "onnx"}
    assert all(f["max_rel_diff"] <= 1e-4 for f in report["files"].values())
