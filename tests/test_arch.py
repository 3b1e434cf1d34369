import json

import pytest

from ghostnas import Arch, GhostNASError, count, load_arch, paper_arch, save_arch
from ghostnas.arch import PAPER_TABLE, make_divisible


def test_make_divisible_matches_paper_rule():
    assert make_divisible(16 * 0.5) == 8
    assert make_divisible(16 * 1.3) == 20
    assert make_divisible(960 * 1.3) == 1248
    assert make_divisible(72 * 0.25) == 20  # SE of mid 72: 20, not 18
    assert make_divisible(1) == 4
    assert make_divisible(10) == 12  # 8 would lose more than 10%


@pytest.mark.parametrize("name, params, macs_m", [
    ("paper-0.5x", 2_587_292, 42.3), ("paper-1.0x", 5_182_508, 141.2), ("paper-1.3x", 7_358_820, 227.0)])
def test_paper_counts_exact(name, params, macs_m):
    cost = count(name)
    assert cost.params == params
    assert round(cost.macs / 1e6, 1) == macs_m
    assert sum(layer.params for layer in cost.layers) == cost.params


def test_paper_table_defined_once_as_data():
    arch = paper_arch(1.0)
    assert arch.num_blocks == 16 == sum(len(s) for s in PAPER_TABLE)
    b = arch.stages[6][3]
    assert (b.k, b.exp, b.out, b.se, b.stride, b.s, b.d) == (3, 480, 112, True, 1, 2, 3)


def test_json_round_trip(tmp_path):
    arch = paper_arch(1.3)
    assert Arch.from_dict(json.loads(arch.to_json())) == arch
    path = save_arch(arch, tmp_path / "a.json")
    assert load_arch(path) == arch
    assert load_arch(str(path)) == arch


def test_resolution_and_classes_change_cost_not_weights():
    small = count("paper-1.0x", resolution=32)
    assert small.params == count("paper-1.0x").params
    assert small.macs < count("paper-1.0x").macs
    assert count("paper-1.0x", num_classes=10).params < count("paper-1.0x").params


@pytest.mark.parametrize("field, value, needle", [
    ("exp", 0, "stage 2 block 0: field 'exp'"),
    ("k", 4, "field 'k' = 4"),
    ("stride", 3, "field 'stride'"),
    ("s", 1, "field 's'"),
    ("d", 2, "field 'd'"),
    ("se", 1, "field 'se'"),
])
def test_validation_names_block_and_field(field, value, needle):
    arch = paper_arch(1.0)
    raw = arch.to_dict()
    raw["stages"][2][0][field] = value
    with pytest.raises(GhostNASError) as exc:
        Arch.from_dict(raw)
    assert needle in str(exc.value)


def test_bad_arch_files(tmp_path):
    with pytest.raises(GhostNASError, match="not a registered name"):
        load_arch("paper-2.0x")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GhostNASError, match="not a readable arch JSON"):
        load_arch(bad)
    extra = tmp_path / "extra.json"
    raw = paper_arch().to_dict()
    raw["stages"][0][0]["colour"] = "red"
    extra.write_text(json.dumps(raw))
    with pytest.raises(GhostNASError, match="stage 0 block 0: unknown field"):
        load_arch(extra)
    raw = paper_arch().to_dict()
    raw["width"] = "wide"
    extra.write_text(json.dumps(raw))
    with pytest.raises(GhostNASError, match="width"):
        load_arch(extra)


def test_arch_module_is_torch_free():
    import subprocess
    import sys

    code = ("import sys, ghostnas; from ghostnas.space import load_space; "
            "ghostnas.count(load_space().sample_arch(0)); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_atomic_writes_get_normal_permissions(tmp_path):
    import os

    from ghostnas.io import atomic_write_text

    path = atomic_write_text(tmp_path / "x.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)
    assert not list(tmp_path.glob(".x.json.*"))  # no temp file left behind


def test_merge_csv_row_replaces_same_key_and_keeps_others(tmp_path):
    from ghostnas.io import merge_csv_row

    path = tmp_path / "t.csv"
    merge_csv_row(path, {"name": "a", "acc": 0.1}, ("name",))
    merge_csv_row(path, {"name": "b", "acc": 0.2}, ("name",))
    rows = merge_csv_row(path, {"name": "a", "acc": 0.3, "extra": 1}, ("name",))
    assert [(r["name"], str(r["acc"])) for r in rows] == [("b", "0.2"), ("a", "0.3")]
    assert path.read_bytes().split(b"\n")[0] == b"name,acc,extra"  # plain LF line ends


def test_merge_csv_row_update_keeps_the_columns_another_worker_wrote(tmp_path):
    from ghostnas.io import merge_csv_row

    path = tmp_path / "t.csv"
    merge_csv_row(path, {"name": "a", "seed0": 0.9}, ("name",))
    merge_csv_row(path, {"name": "a", "seed1": 0.8}, ("name",), update=True)
    merge_csv_row(path, {"name": "b", "seed1": 0.7}, ("name",), update=True)
    assert [(r["name"], r["seed0"], r["seed1"]) for r in _rows(path)] == [("a", "0.9", "0.8"), ("b", "", "0.7")]


def _share_work(path: str, worker: int) -> None:
    import time

    from ghostnas.io import WorkUnit, merge_csv_row, run_units

    def has(item: str) -> bool:
        return item in {r["item"] for r in _rows(path)}

    def do(item: str) -> None:
        time.sleep(0.05)
        merge_csv_row(path, {"item": item, "worker": worker}, ("item",))

    # "z" needs all the others (listed first: it is skipped until they are done)
    units = [WorkUnit("z", lambda: has("z"), lambda: do("z"), ready=lambda: all(map(has, "abcdef")))]
    units += [WorkUnit(item, lambda i=item: has(i), lambda i=item: do(i)) for item in "abcdef"]
    run_units(units, path, max_wait_s=0.2)
    assert all(map(has, "abcdefz"))  # each returns only once everything is done, by either


def _rows(path) -> list[dict]:
    import csv

    try:
        with open(path, newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        return []


def test_processes_share_work_by_claims_and_take_over_a_dead_ones(tmp_path):
    import json
    import multiprocessing
    import os
    import socket
    import subprocess
    import sys

    import time

    from ghostnas.io import live_claims, work_claim

    path = tmp_path / "results.csv"
    host = socket.gethostname()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    # a live process's claim is respected, a dead one's (or a garbled one) is taken over,
    # and so is one whose pid another process has since been given (told apart by start time)
    (tmp_path / "results.claims.json").write_text(json.dumps({
        "live": {"pid": os.getppid(), "host": host}, "dead": {"pid": int(dead), "host": host},
        "garbled": {"host": host}, "reused": {"pid": os.getppid(), "host": host, "started": -1}}))
    assert set(live_claims(path)) == {"live"}  # what --status reports as running
    with work_claim(path, "live") as mine:
        assert not mine
    with work_claim(path, "new") as mine:
        assert mine and live_claims(path)["new"]["since"] <= time.time()
    for item in ("dead", "garbled", "reused"):
        with work_claim(path, item) as mine:
            assert mine
    assert set(json.loads((tmp_path / "results.claims.json").read_text())) == {"live"}  # released
    # two workers over the same items (``run_units``): each done exactly once, both did some
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_share_work, args=(str(path), w)) for w in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    rows = _rows(path)
    assert sorted(r["item"] for r in rows) == list("abcdefz")
    assert {r["worker"] for r in rows} == {"0", "1"}


def test_merge_json_keeps_other_writers_keys(tmp_path):
    import json

    from ghostnas.io import merge_json

    path = tmp_path / "cache.json"
    merge_json(path, {"a": 1})
    merged = merge_json(path, {"b": 2})
    assert merged == {"a": 1, "b": 2} == json.loads(path.read_text())
