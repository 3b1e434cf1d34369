"""Property: every public entry point that reads user input either succeeds with a sane result or
raises the project's one error type (GhostNASError), never anything else, for generated malformed
input (arch JSON, space YAML, budget strings, LUT rows and metadata, IDX and CIFAR files, journal
lines). Bounded examples: seconds in all."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghostnas import GhostNASError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**13, 10**13), st.floats(allow_nan=True),
                    st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=12)


def mutate(base: dict, path_choice: int, value) -> dict:
    """``base`` with one field (top level or a block's) replaced by ``value``."""
    data = json.loads(json.dumps(base))
    if path_choice % 2 == 0:
        keys = sorted(data)
        data[keys[path_choice % len(keys)]] = value
    else:
        block = data["stages"][path_choice % len(data["stages"])][0]
        keys = sorted(block)
        block[keys[path_choice % len(keys)]] = value
    return data


@FAST
@given(st.integers(0, 1000), json_values)
def test_arch_json(choice, value):
    from ghostnas.arch import Arch, paper_arch
    from ghostnas.cost import count

    try:
        arch = Arch.from_dict(mutate(paper_arch(0.5).to_dict(), choice, value))
    except GhostNASError:
        return
    cost = count(arch)  # a sane Arch can be costed
    assert cost.params > 0 and cost.macs > 0


@FAST
@given(json_values)
def test_arch_json_any_document(value):
    from ghostnas.arch import Arch

    try:
        Arch.from_dict(value)
    except GhostNASError:
        pass


@FAST
@given(st.integers(0, 1000), json_values)
def test_space_yaml(choice, value):
    import yaml

    from ghostnas.space import space_from_dict

    base = yaml.safe_load(Path("search_spaces/tiny.yaml").read_text())
    data = json.loads(json.dumps(base))
    if choice % 2 == 0:
        data[sorted(data)[choice % len(data)]] = value
    else:
        stage = data["stages"][choice % len(data["stages"])]
        stage[sorted(stage)[choice % len(stage)]] = value
    try:
        space = space_from_dict(data)
    except GhostNASError:
        return
    arch = space.sample_arch(choice)  # a space that loads yields valid networks
    assert space.to_labels(arch) is not None


@FAST
@given(st.text(max_size=30))
def test_budget_strings(text):
    from ghostnas.search.budget import parse_budgets

    try:
        budgets = parse_budgets(text)
    except GhostNASError:
        return
    assert all(0 <= b.floor < b.limit for b in budgets)


TINY_LUT = "results/luts/tiny-onnxruntime-1t.csv"


@FAST
@given(st.integers(1, 60), st.lists(st.text(alphabet="0123456789.,-eEnaif|:x ", max_size=12), min_size=1, max_size=6))
def test_lut_rows(tmp_path, line_no, cells):
    from ghostnas.cost.lut import LatencyModel

    rows = Path(TINY_LUT).read_text().splitlines()
    parts = rows[line_no].split(",")
    for i, cell in enumerate(cells):
        parts[(i * 5) % len(parts)] = cell
    rows[line_no] = ",".join(parts)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    shutil.copy(TINY_LUT + ".meta.json", str(path) + ".meta.json")
    try:
        model = LatencyModel.load(path)
    except GhostNASError:
        return
    assert all(r["median_ms"] > 0 for r in model.rows.values())


@FAST
@given(st.sampled_from(["format", "backend", "threads", "calibration", "device", "space", "space_hash",
                        "reference", "overhead_ms"]), json_values)
def test_lut_metadata(tmp_path, key, value):
    from ghostnas.cost.lut import LatencyModel
    from ghostnas.space import load_space

    meta = json.loads(Path(TINY_LUT + ".meta.json").read_text())
    meta[key] = value
    path = tmp_path / "t.csv"
    shutil.copy(TINY_LUT, path)
    Path(str(path) + ".meta.json").write_text(json.dumps(meta))
    try:
        model = LatencyModel.load(path)
        model.require_space(load_space("tiny"))
        ms = model.predict_arch(load_space("tiny").sample_arch(1))
    except GhostNASError:
        return
    assert np.isfinite(ms)


@FAST
@given(st.binary(max_size=64), st.booleans())
def test_idx_bytes(data, with_header):
    from ghostnas.idx import parse_idx

    raw = (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03" + data) if with_header else data
    try:
        array = parse_idx(raw)
    except GhostNASError:
        return
    assert array.size * array.itemsize == len(raw) - 4 - 4 * array.ndim


@FAST
@given(json_values, st.booleans())
def test_cifar_batches(tmp_path, value, as_batch):
    from ghostnas.data import _read_cifar_batch

    obj = {b"data": value, b"labels": value} if as_batch else value
    try:
        payload = pickle.dumps(obj, protocol=2)
    except Exception:
        return
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)
    try:
        x, y = _read_cifar_batch(path)
    except GhostNASError:
        return
    assert len(x) == len(y)


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    from ghostnas.search import SearchConfig, run_search

    out = tmp_path_factory.mktemp("runs")
    run_search(SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke", trials=1,
                            out=str(out), threads=1, progress=False, study="t"))
    return out / "t"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=60), json_values.map(json.dumps)), st.booleans())
def test_journal_lines(tmp_path, finished_study, line, newline):
    from ghostnas.results import load_study, summary_of

    run = tmp_path / "t"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(finished_study, run)
    with open(run / "study.journal", "a") as fh:
        fh.write(line.replace("\n", " ") + ("\n" if newline else ""))
    try:
        load_study(run)
        summary = summary_of(run)
    except GhostNASError:
        return
    assert summary["trials"].get("complete", 0) >= 1
