import itertools

import pytest

from ghostnas import GhostNASError, count, paper_arch
from ghostnas.space import load_space, space_from_dict


@pytest.fixture(scope="module")
def space():
    return load_space("ghostnet")


@pytest.mark.parametrize("width", [0.5, 1.0, 1.3])
def test_paper_networks_are_points_of_the_space(space, width):
    arch = paper_arch(width)
    labels = space.to_labels(arch)
    rebuilt = space.to_arch(labels)
    # identical except kernels that act nowhere (stride-1 identity blocks)
    assert count(rebuilt).params == count(arch).params
    assert count(rebuilt).macs == count(arch).macs
    for (_, _, a), (_, _, b) in zip(rebuilt.blocks(), arch.blocks()):
        assert (a.exp, a.out, a.se, a.stride, a.s, a.d) == (b.exp, b.out, b.se, b.stride, b.s, b.d)
    assert labels["s6_b1_exp"] == 2.3 and labels["width"] == width


def test_sampling_is_seeded(space):
    assert space.sample(7) == space.sample(7)
    assert space.sample(7) != space.sample(8)


def test_labels_round_trip(space):
    for seed in range(200):
        labels = space.sample(seed)
        arch = space.to_arch(labels)
        active = {k: v for k, v in labels.items() if space.active(labels, k)}
        assert space.to_labels(arch) == active
        assert space.to_arch(active) == arch


def test_labels_errors(space):
    labels = space.sample(0)
    with pytest.raises(GhostNASError, match="unknown label"):
        space.to_arch({**labels, "s9_b0_exp": 3})
    with pytest.raises(GhostNASError, match="not a choice"):
        space.to_arch({**labels, "s1_b0_k": 9})
    del labels["s1_b0_exp"]
    with pytest.raises(GhostNASError, match="missing 's1_b0_exp'"):
        space.to_arch(labels)


def test_size_equals_brute_force_enumeration():
    tiny = load_space("tiny")
    dims = tiny.dimensions()
    archs = {tiny.to_arch(dict(zip([n for n, _ in dims], values)))
             for values in itertools.product(*[c for _, c in dims])}
    assert len(archs) == tiny.size() == 4096


def test_depth_drops_trailing_blocks(space):
    labels = space.to_labels(paper_arch(1.0))
    labels["s6_depth"] = 3
    arch = space.to_arch(labels)
    assert [b.out for b in arch.stages[6]] == [80, 80, 80]
    assert arch.stages[7][0].exp == 480  # 80 in channels * 6
    assert "s6_b3_exp" not in space.to_labels(arch)


def test_unused_kernel_is_not_a_label(space):
    names = dict(space.dimensions())
    assert "s1_b0_k" in names and "s6_b3_k" in names  # stride 2; 80 -> 112 projection
    assert "s2_b0_k" not in names and "s8_b1_k" not in names  # identity blocks


@pytest.mark.parametrize("text, needle", [
    ("stages: 3", "'stages' must be a non-empty list"),
    ("stages: [{out: [16], stride: 3, exp_ratio: [1]}]", "stage 0 stride: 3 is not valid"),
    ("stages: [{out: [16], stride: 1, exp_ratio: []}]", "stage 0 exp_ratio: empty list"),
    ("stages: [{out: [16], stride: 1}]", "stage 0: missing 'exp_ratio'"),
    ("stages: [{out: [16], stride: 1, exp_ratio: [1], kernel: [3]}]", "unknown key(s) ['kernel']"),
    ("stages: [{out: [16, 16], stride: 1, exp_ratio: [1], depth: [3]}]", "depth: 3 is not valid"),
    ("widht: [1.0]\nstages: []", "unknown key(s) ['widht']"),
])
def test_bad_yaml_gives_clear_errors(tmp_path, text, needle):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(GhostNASError) as exc:
        load_space(path)
    assert needle in str(exc.value) and str(path) in str(exc.value)


def test_unparseable_yaml_and_missing_space(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("stages: [unclosed\n")
    with pytest.raises(GhostNASError, match="invalid YAML at line"):
        load_space(path)
    with pytest.raises(GhostNASError, match="not found"):
        load_space("no-such-space")


def test_space_from_dict_defaults():
    sp = space_from_dict({"stages": [{"out": [16], "stride": 1, "exp_ratio": [1, 2]}]})
    assert sp.size() == 2 and sp.resolution == 224


def test_smallest_labels_give_the_cheapest_network():
    tiny = load_space("tiny")
    dims = tiny.dimensions()
    cheapest = min(count(tiny.to_arch(dict(zip([n for n, _ in dims], v)))).macs
                   for v in itertools.product(*[c for _, c in dims]))
    assert count(tiny.to_arch(tiny.smallest_labels())).macs == cheapest


def test_labels_read_back_from_a_table_give_the_same_arch():
    space = load_space("ghostnet")
    labels = space.sample(5)
    as_floats = {k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
                 for k, v in labels.items()}  # what a pandas column with gaps holds: 5.0 for 5
    assert space.to_arch(as_floats) == space.to_arch(labels)


def test_labels_are_spelled_and_parsed_in_one_place():
    from ghostnas.space import Label, label

    space = load_space("ghostnet")
    for name, _ in space.dimensions():
        assert str(Label.parse(name)) == name
    assert Label.parse("s6_b3_exp") == Label("exp", 6, 3) and label("depth", 2) == "s2_depth"
    with pytest.raises(GhostNASError, match="not a label"):
        Label.parse("s6-b3")


def test_the_walk_matches_the_built_network():
    """space.slots (what labels, sizes and LUT entries read) agrees with the Arch's own resolution."""
    space = load_space("ghostnet")
    for seed in range(5):
        labels = space.sample(seed)
        arch = space.to_arch(labels)
        depths = tuple(len(s) for s in arch.stages)
        slots = list(space.slots(depths))
        resolved = arch.replace(width=1.0).resolve().blocks
        assert [(b.cin, b.cout, b.stride) for b in slots] == [(r.cin, r.cout, r.stride) for r in resolved]
        possible = {(b.stage, b.index, b.cin) for b in space.possible_slots()}
        assert all((b.stage, b.index, b.cin) in possible for b in slots)


def test_the_default_space_offers_dfc_per_block_and_holds_the_paper_networks():
    from ghostnas import load_arch

    space = load_space("ghostnet")
    attn = [name for name, _ in space.dimensions() if name.endswith("_attn")]
    assert len(attn) == sum(max(st.depth) for st in space.stages)  # one choice per block position
    for name in ("paper-0.5x", "paper-1.0x", "paper-1.3x", "paper-v2-1.0x", "paper-v2-1.3x"):
        arch = load_arch(name)
        back = space.to_arch(space.to_labels(arch))
        assert count(back)[:2] == count(arch)[:2] and [b.attn for _, _, b in back.blocks()] == \
            [b.attn for _, _, b in arch.blocks()], name
    v1 = load_space("ghostnet-v1")  # the same space without the choice, as it was before it
    assert v1.name == "ghostnet-v1" and not v1.dimensions()[-1][0].endswith("_attn")
    assert not v1.contains(load_arch("paper-v2-1.0x")) and v1.contains(load_arch("paper-1.0x"))
    assert v1.digest() == "e794221382923aa7"  # the V1 content hash of its tables and studies, unchanged
    assert space.digest() != v1.digest() and v1.v1_only() is v1
    assert [v1.sample_arch(s) for s in range(3)] == [space.v1_only().sample_arch(s) for s in range(3)]
