import gzip
import json
import shutil
from pathlib import Path

import pytest

from ghostnas import GhostNASError, load_arch, paper_arch
from ghostnas.cost.lut import (Entry, LatencyModel, arch_entries, build_lut, check_lut, entry_module,
                               read_rows, select_entries, space_entries)
from ghostnas.cost.lut.timing import make_runner
from ghostnas.space import load_space

TINY_LUT = "results/luts/tiny-onnxruntime-1t.csv"


def test_key_round_trip_and_coverage():
    space = load_space("tiny")
    entries = {e.key: e for e in space_entries(space)}
    assert all(Entry.from_key(k) == e for k, e in entries.items())
    for seed in range(30):  # every entry of every network of the space is enumerated
        assert {e.key for e in arch_entries(space.sample_arch(seed).resolve())} <= set(entries)
    keys = [e.key for e in arch_entries(paper_arch(1.0).resolve())]
    assert keys[0] == "stem|in:224x224x3|out:16"
    assert keys[4] == "block|in:56x56x24|mid:72|out:40|k:5|stride:2|se:20|s:2|d:3"


def test_time_budget_stops_the_build_on_a_stratified_prefix_and_a_rerun_grows_it(tmp_path, monkeypatch):
    from ghostnas.cost.lut import build as build_module
    from ghostnas.cost.lut.keys import entry_order, position

    clock = {"now": 0.0}
    monkeypatch.setattr(build_module.time, "perf_counter", lambda: clock["now"])

    def six_seconds(*args, **kwargs):  # every timing "takes" 6 s of the fake clock
        clock["now"] += 6.0
        return {"median_ms": 1.0, "p10_ms": 1.0, "p90_ms": 1.0, "runs": 30}

    networks_timed, network_ms = [], [2.0, 3.0, 3.0, 2.0]  # during the entries, then after

    def network(arch, *args, **kwargs):
        networks_timed.append((arch.to_json(), clock["now"]))
        return network_ms.pop(0) if network_ms else 1.0

    monkeypatch.setattr(build_module, "measure", six_seconds)
    monkeypatch.setattr(build_module, "measure_arch", network)
    space, out, messages = load_space("tiny"), tmp_path / "lut.csv", []
    build_lut(space, "torch", out, calibrate=2, reference=False, log=messages.append, minutes=1)
    first = read_rows(out)
    order = [e.key for e in entry_order(space, 0)]
    assert 5 <= len(first) <= 10 < len(order)  # 57 s at 6 s a timing, one of them the overhead's
    # each calibration network timed once during the entries (at 1/4 and 3/4 of the time) and once after
    assert [a for a, _ in networks_timed] == [a for a, _ in networks_timed[:2]] * 2
    assert networks_timed[0][1] < networks_timed[1][1] < 57 <= networks_timed[2][1]
    meta = json.loads(Path(str(out) + ".meta.json").read_text())
    assert [n["ms"] for n in meta["calibration"]["networks"]] == [2.5, 2.5] and "calibration_during_build" not in meta
    assert list(first) == order[:len(first)]  # the stem/final/head entries, then blocks dealt round-robin
    assert any("time budget spent" in m for m in messages)
    blocks = [e for e in entry_order(space, 0)[:40] if e.kind == "block"]
    positions = {position(e) for e in blocks}
    assert len(positions) > 1 and len({position(e) for e in blocks[:len(positions)]}) == len(positions)
    build_lut(space, "torch", out, calibrate=0, reference=False, log=messages.append, minutes=1)
    grown = read_rows(out)
    assert len(grown) > len(first) and list(grown)[:len(first)] == list(first)
    assert json.loads(Path(str(out) + ".meta.json").read_text())["last_run"]["minutes_budget"] == 1


def test_build_resumes_without_remeasuring(tmp_path):
    space = load_space("tiny")
    out = tmp_path / "lut.csv"
    build_lut(space, "torch", out, max_entries=12, calibrate=0, log=lambda m: None)
    first = read_rows(out)
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:20])  # interrupted: 2 lost, 1 torn line
    assert len(read_rows(out)) == len(first) - 3
    messages = []
    build_lut(space, "torch", out, max_entries=12, calibrate=0, log=messages.append)
    assert "3 to go" in messages[0]
    again = read_rows(out)
    assert set(again) == set(first)
    kept = [k for k in first if k in again][:5]
    assert all(again[k]["median_ms"] == first[k]["median_ms"] for k in kept)
    with pytest.raises(GhostNASError, match="resume with the same --backend"):
        build_lut(space, "onnxruntime", out, max_entries=12, calibrate=0, log=lambda m: None)
    meta_path = Path(str(out) + ".meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["allocator"]  # how torch's memory was managed while timing
    meta_path.write_text(json.dumps({**meta, "allocator": None}))  # a table from before the setting
    with pytest.raises(GhostNASError, match="not comparable; rebuild with a new --out"):
        build_lut(space, "torch", out, max_entries=12, calibrate=0, log=lambda m: None)
    with pytest.raises(GhostNASError, match="rebuild the table"):  # nor checked against new timings
        check_lut(LatencyModel.load(out), space, n=2)


def test_a_larger_sample_grows_a_table_by_only_the_new_entries():
    space = load_space("tiny")
    small = {e.key for e in select_entries(space, 30, 0)}
    assert small < {e.key for e in select_entries(space, 50, 0)}
    other = {e.key for e in select_entries(space, 30, 1)}  # a table sampled with another seed
    assert other != small
    assert other < {e.key for e in select_entries(space, 50, 0, measured=other)}


def test_torch_timing_reuses_freed_memory():
    """A 112 px block's activations are not page-faulted in anew on every timed call (glibc gives
    big freed blocks back to the OS by default: 1,700-7,000 faults per call, 2.5x the compute)."""
    import platform
    import resource

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("the setting is glibc's")
    module, shape = entry_module(Entry.from_key("block|in:112x112x24|mid:144|out:36|k:3|stride:2|se:36|s:4|d:1"))
    run = make_runner(module, shape, "torch", 1)
    for _ in range(3):
        run()
    faults = []
    for _ in range(7):  # per call, and the median: other threads of the test process fault now and then
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        run()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert sorted(faults)[3] < 100


def test_interrupted_resume_keeps_the_calibration(tmp_path):
    space = load_space("tiny")
    out = tmp_path / "lut.csv"
    build_lut(space, "torch", out, max_entries=12, calibrate=2, log=lambda m: None)
    out.write_text("\n".join(out.read_text().splitlines()[:-3]) + "\n")

    def interrupt(message):
        if message.startswith("entries: 1/"):  # after the metadata is rewritten, mid-build
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_lut(space, "torch", out, max_entries=12, calibrate=2, log=interrupt)
    meta = json.loads(Path(str(out) + ".meta.json").read_text())
    assert len(meta["calibration"]["networks"]) == 2  # predictions stay calibrated meanwhile


def test_referenced_timing_cancels_machine_speed_drift():
    import time

    from ghostnas.device_runner import resolve_clock, time_it

    calls = [0]

    def slow_then_fast(ms):  # the machine halves and doubles its speed every few calls
        def run():
            calls[0] += 1
            time.sleep(ms * (1 + (calls[0] // 7) % 2) / 1e3)
        return run

    stats = time_it(slow_then_fast(4), 2, 12, "wall", slow_then_fast(2), reference_ms=1.0)
    assert stats["median_ms"] == pytest.approx(2.0, rel=0.15)  # 4 ms / 2 ms, whatever the speed
    assert stats["raw_median_ms"] > 3.5
    assert resolve_clock("auto", 1) == "cpu" and resolve_clock("auto", 4) == "wall"
    with pytest.raises(ValueError, match="unknown clock"):
        resolve_clock("tsc", 1)


def test_corrupt_lut_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    shutil.copy(TINY_LUT + ".meta.json", str(bad) + ".meta.json")
    with pytest.raises(GhostNASError, match="not a ghostnas LUT"):
        LatencyModel.load(bad)
    with pytest.raises(GhostNASError, match="not found"):
        LatencyModel.load(tmp_path / "missing.csv")
    good = tmp_path / "good.csv"
    rows = open(TINY_LUT).read().splitlines()
    good.write_text("\n".join([rows[0], rows[1].replace(",", ",x", 3), *rows[2:]]) + "\n")
    shutil.copy(TINY_LUT + ".meta.json", str(good) + ".meta.json")
    with pytest.raises(GhostNASError, match="corrupt row at line 2"):
        LatencyModel.load(good)


def test_predictor_fills_missing_entries():
    model = LatencyModel.load(TINY_LUT)
    arch = load_space("tiny").sample_arch(3)
    entries = arch_entries(arch.resolve())
    assert all(model.entry_ms(e)[1] for e in entries)  # the shipped tiny LUT is complete
    held_out = entries[2].key
    partial = LatencyModel({k: v for k, v in model.rows.items() if k != held_out}, model.meta)
    predicted, measured = partial.entry_ms(entries[2])
    true, _ = model.entry_ms(entries[2])
    assert not measured and 0.5 * true < predicted < 2 * true  # one held-out entry, 71 to learn from
    whole = model.predict_arch(arch)  # calibrated: close to the sum of its measured entries
    assert 0.5 * model.predict_sum(arch) < whole < 1.5 * model.predict_sum(arch)


def test_predictions_are_cached_beside_the_table_and_refitted_when_it_changes(tmp_path):
    drop = lambda rows: [rows[0], *rows[1::2]]  # half the entries measured: the rest predicted
    path = write_tiny_lut(tmp_path, edit=drop)
    cache = Path(str(path) + ".predicted.csv.gz")
    arch = load_space("tiny").sample_arch(3)
    first = LatencyModel.load(path)
    ms = first.predict_arch(arch)
    missing = [e for e in space_entries(load_space("tiny")) if e.key not in first.rows]
    assert cache.exists() and missing
    second = LatencyModel.load(path)
    assert second.predict_arch(arch) == ms and second._model is None  # no fit: every entry came cached
    assert {e.key for e in missing} <= set(second._predicted)
    cache.write_bytes(b"not gzip")  # damaged: refitted, same numbers, cache rewritten
    assert LatencyModel.load(path).predict_arch(arch) == ms and cache.read_bytes() != b"not gzip"
    grown = write_tiny_lut(tmp_path)  # the table grew (same file): the old predictions are not used
    assert LatencyModel.load(grown)._read_cache() == {}


def test_calibration_is_refitted_from_the_calibration_networks():
    model = LatencyModel.load(TINY_LUT)
    space = load_space("tiny")
    nets = []
    for seed in range(5):  # whole networks that take exactly 1.5 x their entries + 0.2 ms
        keys = [e.key for e in arch_entries(space.sample_arch(seed).resolve())]
        total = sum(model.entry_ms(Entry.from_key(k))[0] for k in keys)
        nets.append({"keys": keys, "ms": 1.5 * total + 0.2})
    meta = {**model.meta, "calibration": {"a": 9.0, "b": 9.0, "networks": nets}}  # stale a, b
    a, b = LatencyModel(model.rows, meta).calibration()
    assert a == pytest.approx(1.5) and b == pytest.approx(0.2)
    moved = {**model.meta, "space": "/elsewhere/checkout/search_spaces/tiny.yaml"}  # built elsewhere
    assert LatencyModel(model.rows, moved).space().name == "tiny"


def test_complete_v1_lut_ships_with_metadata():
    meta = json.loads(open("results/luts/ghostnet-v1-onnxruntime-1t.csv.meta.json").read())
    assert meta["backend"] == "onnxruntime" and meta["threads"] == 1 and meta["resolution"] == 224
    assert "cpu" in meta["device"] and len(meta["calibration"]["networks"]) >= 16
    assert meta["clock"] == "cpu" and meta["reference"]["ms"] > 0
    model = LatencyModel.load("results/luts/ghostnet-v1-onnxruntime-1t.csv")
    assert model.space().name == "ghostnet-v1"  # found by its name, its content hash checked
    # the figures the README quotes, from the shipped table (a change to keys or calibration shows)
    assert [round(model.predict_arch(f"paper-{w}x"), 3) for w in ("0.5", "1.0", "1.3")] == [5.106, 8.814, 14.564]
    # the table is complete and the paper networks are points of the space, so every entry is
    # measured: their k=5 on identity blocks (a kernel that does not act) is keyed as k=3
    for name in ("paper-0.5x", "paper-1.0x", "paper-1.3x"):
        assert all(model.entry_ms(e)[1] for e in arch_entries(load_arch(name).resolve())), name
    assert model._model is None  # so the predictor was never fitted


@pytest.mark.parametrize("path", sorted(str(p) for p in Path("results/luts").glob("*.csv")))
def test_every_shipped_sampled_table_ships_its_current_predictions(path):
    """A table that lacks entries needs its predictor; the cache beside it spares every fresh clone
    the fit (~35 s), and must be the one of the table as committed (regenerate it after a rebuild:
    load the table and predict any network)."""
    model, cache = LatencyModel.load(path), Path(path + ".predicted.csv.gz")
    assert cache.exists() or len(model.rows) >= model.meta["entries_in_space"], f"{path}: no prediction cache"
    if not cache.exists():
        return
    with gzip.open(cache, "rt") as fh:
        assert fh.readline().split()[2] == model._fit_digest(), f"{path}: stale prediction cache"


def test_lut_check_reports_the_documented_keys(capsys):
    from ghostnas.cli import main

    assert main(["lut", "check", "--lut", TINY_LUT, "--n", "4", "--times", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"n", "mape", "within_5pct", "within_10pct", "kendall_tau"} <= set(report)
    errors = [abs(a["error_pct"]) for a in report["per_arch"]]
    assert report["n"] == len(errors) == 4
    assert report["within_10pct"] == sum(e <= 10 for e in errors) / 4  # the summary is of these rows
    assert report["mape"] == pytest.approx(sum(errors) / 400, abs=1e-4)


def tiny_lut_copy(folder: Path, **device) -> str:
    """The shipped tiny table in ``folder``, its recorded machine replaced by ``device`` fields."""
    for suffix in ("", ".meta.json"):
        shutil.copy(TINY_LUT + suffix, str(folder / "lut.csv") + suffix)
    meta_path = folder / "lut.csv.meta.json"
    meta = json.loads(meta_path.read_text())
    meta["device"].update(device)
    meta_path.write_text(json.dumps(meta))
    return str(folder / "lut.csv")


def this_machine() -> dict:
    import os
    import platform

    from ghostnas.machine import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine()}


def test_search_with_latency_budget(tmp_path):
    from ghostnas.search import SearchConfig, run_search

    model = LatencyModel.load(TINY_LUT)
    space = load_space("tiny")
    median = sorted(model.predict_arch(space.sample_arch(s)) for s in range(40))[20]
    lut = tiny_lut_copy(tmp_path, **this_machine())  # as if built here (CI may run on another CPU)
    cfg = SearchConfig(budgets=(f"{median:.3f}ms",), space="tiny", data="digits", protocol="smoke",
                       trials=2, out=str(tmp_path), threads=1, progress=False, lut=lut, study="lat")
    summary = run_search(cfg)
    assert summary["best"]["latency_ms"] <= round(median, 3)
    # the best found network and the baseline were timed here, like with like with the table
    checks = json.loads((tmp_path / "lat" / "latency_check.json").read_text())
    found = summary["best_found"]
    assert checks[str(found["trial"])]["measured_ms"] == found["latency_ms_measured"] > 0
    assert found["latency_fits"] == (found["latency_ms_measured"] <= round(median, 3))


def test_network_measured_over_a_latency_budget_ranks_last(tmp_path):
    from ghostnas.results import load_study, rank_trials, trials_frame, write_results
    from ghostnas.search import SearchConfig, run_search

    cfg = SearchConfig(budgets=("50ms",), space="tiny", data="digits", protocol="smoke", trials=3,
                       out=str(tmp_path), threads=1, progress=False, lut=TINY_LUT, study="lat",
                       check_latency=0)
    run_search(cfg)
    run = tmp_path / "lat"
    order = list(rank_trials(run, trials_frame(load_study(run))).number)
    first = order[0]
    (run / "latency_check.json").write_text(json.dumps({str(first): {
        "predicted_ms": 1.0, "measured_ms": 60.0, "fits": False, "baseline": False}}))
    assert list(rank_trials(run, trials_frame(load_study(run))).number) == order[1:] + [first]
    summary = write_results(run, plots=False)
    assert summary["best"]["trial"] != first


def test_latency_is_timed_only_where_the_table_was_built(tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "phone").mkdir()
    assert LatencyModel.load(tiny_lut_copy(tmp_path / "here", **this_machine())).why_not_timeable_here() is None
    phone = LatencyModel.load(tiny_lut_copy(tmp_path / "phone", **{**this_machine(), "cpu": "Cortex-A76"}))
    assert "built on another machine (cpu 'Cortex-A76'" in phone.why_not_timeable_here()


# benchmark_model's summary lines, in the format its documentation shows
BENCHMARK_OUTPUT = """\
STARTING!
Num runs: [50]
Num threads: [1]
Loaded model /data/local/tmp/ghostnas/e00001.tflite
The input model file size (MB): 0.0123
Initialized session in 5.685ms.
Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=36 first=18535 curr=14089 min=13880 max=15287 avg=14462.3 std=269

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=14431 curr=14089 min=13880 max=15287 avg=14154.9 std=269

Inference timings in us: Init: 5685, First inference: 18535, Warmup (avg): 14462.3, Inference (avg): 14154.9
"""


def test_benchmark_model_parser():
    from ghostnas.cost.lut.adb import parse_benchmark_model

    t = parse_benchmark_model(BENCHMARK_OUTPUT)
    assert t["median_ms"] == pytest.approx(14.1549) and t["runs"] == 50
    assert t["p10_ms"] == pytest.approx(13.88) and t["p90_ms"] == pytest.approx(15.287)
    with pytest.raises(GhostNASError, match="no timings"):
        parse_benchmark_model("ERROR: Could not open model")


def test_device_runner_without_torch_and_import(tmp_path):
    """export-blocks -> the copied runner in a Python where torch cannot be imported -> import."""
    import subprocess
    import sys

    from ghostnas.cost.lut import export_blocks, import_measurements

    folder = export_blocks(load_space("tiny"), "onnx", tmp_path / "dev", max_entries=12, networks=3,
                           log=lambda m: None)
    code = ("import sys, runpy; sys.modules['torch'] = None; "
            f"sys.argv = ['r', {str(folder)!r}, '--runs', '3', '--warmup', '1']; "
            f"runpy.run_path({str(folder / 'ghostnas_runner.py')!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-800:]
    model = import_measurements(folder, tmp_path / "dev.csv")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(model.rows) == len(manifest["entries"]) and "calibration" in model.meta
    assert model.meta["device"]["runtime"] == "onnxruntime"
    assert model.meta["clock"] == "cpu" and model.meta["reference"]["ms"] > 0  # timed against it


def test_adb_flow_with_a_fake_adb(tmp_path, monkeypatch):
    """The host-driven flow against a stand-in `adb` that answers like a phone."""
    import json as _json
    import os

    from ghostnas.cost.lut.adb import run_adb

    folder = tmp_path / "phone"
    (folder / "models").mkdir(parents=True)
    (folder / "models" / "e00000.tflite").write_bytes(b"tflite")
    key = "stem|in:64x64x3|out:8"
    (folder / "manifest.json").write_text(_json.dumps({"format": "tflite", "space": "tiny", "space_name": "tiny",
        "resolution": 64, "entries": [{"key": key, "file": "models/e00000.tflite", "input_shape": [1, 3, 64, 64]}]}))
    out_file = tmp_path / "bench.txt"
    out_file.write_text(BENCHMARK_OUTPUT)
    fake = tmp_path / "bin" / "adb"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n"
                    'case "$*" in\n'
                    '  *getprop*) echo Pixel-Test ;;\n'
                    '  *cpuinfo*) echo "Hardware : Test SoC" ;;\n'
                    f'  *benchmark_model*) cat {out_file} ;;\n'
                    "esac\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    measured = run_adb(folder, threads=1)
    rows = measured.read_text().splitlines()
    assert rows[1].startswith(key) and "14.1549" in rows[1]
    assert "Pixel-Test" in _json.loads((folder / "device.json").read_text())["cpu"]


def test_litert_backend_when_installed(tmp_path):
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    micro = Path(__file__).parent / "fixtures" / "micro.yaml"  # 5 entries: each is a TFLite conversion
    model = build_lut(load_space(str(micro)), "litert", tmp_path / "l.csv", calibrate=0, log=lambda m: None)
    assert len(model.rows) == 5 and all(r["median_ms"] > 0 for r in model.rows.values())


def write_tiny_lut(folder: Path, edit=None, meta_edit=None) -> Path:
    """A copy of the shipped tiny table, its rows (list of CSV lines) and metadata edited."""
    rows = open(TINY_LUT).read().splitlines()
    if edit:
        rows = edit(rows)
    path = folder / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    meta = json.loads(open(TINY_LUT + ".meta.json").read())
    Path(str(path) + ".meta.json").write_text(json.dumps(meta_edit(meta) if meta_edit else meta))
    return path


def with_median(rows, value):
    cells = rows[1].split(",")
    cells[-4] = value  # median_ms (the columns end median, p10, p90, runs)
    return [rows[0], ",".join(cells), *rows[2:]]


@pytest.mark.parametrize("value, needle", [("nan", "not a finite number"), ("inf", "not a finite number"),
                                           ("-0.5", "is not a time"), ("1e308", "is not a time"),
                                           ("0", "is not a time")])
def test_bad_times_in_a_table_are_refused(tmp_path, value, needle):
    path = write_tiny_lut(tmp_path, lambda rows: with_median(rows, value))
    with pytest.raises(GhostNASError, match=f"line 2 .*{needle}"):
        LatencyModel.load(path)


def test_duplicate_keys_and_foreign_metadata_are_refused(tmp_path):
    path = write_tiny_lut(tmp_path, lambda rows: rows + [rows[1]])
    with pytest.raises(GhostNASError, match="appears twice"):
        LatencyModel.load(path)
    path = write_tiny_lut(tmp_path, meta_edit=lambda meta: [meta])
    with pytest.raises(GhostNASError, match="holds a JSON list, not the table's metadata"):
        LatencyModel.load(path)


def test_a_table_refuses_another_space(tmp_path, capsys):
    from ghostnas.cli import main
    from ghostnas.search import SearchConfig, run_search

    tiny_table = LatencyModel.load(TINY_LUT)
    meta = json.loads(open(TINY_LUT + ".meta.json").read())
    assert meta["space"] == "tiny" and meta["space_hash"] == load_space("tiny").digest()  # no machine's path
    with pytest.raises(GhostNASError, match="built for space 'tiny'.*not 'ghostnet'"):
        tiny_table.require_space(load_space("ghostnet"))
    cfg = SearchConfig(budgets=("30ms",), space="ghostnet", data="digits", protocol="smoke", trials=1,
                       out=str(tmp_path), lut=TINY_LUT, progress=False)
    with pytest.raises(GhostNASError, match="built for space 'tiny'"):
        run_search(cfg)
    assert not (tmp_path / "search-30ms").exists()  # refused before anything was written
    assert main(["lut", "check", "--lut", TINY_LUT, "--space", "ghostnet", "--n", "2"]) == 2
    # a table of a same-named space whose content changed is refused too
    edited = write_tiny_lut(tmp_path, meta_edit=lambda m: {**m, "space_hash": "0123456789abcdef"})
    with pytest.raises(GhostNASError, match="content 0123456789abcdef"):
        LatencyModel.load(edited).space()


def test_a_table_from_another_cpu_is_said(tmp_path, capsys):
    here = LatencyModel.load(tiny_lut_copy(tmp_path, **this_machine()))
    assert here.foreign_device() is None
    (tmp_path / "x").mkdir()
    other = LatencyModel.load(tiny_lut_copy(tmp_path / "x", cpu="Intel(R) Xeon(R) Platinum 8375C"))
    note = other.foreign_device()
    assert "timed on another device" in note and "Xeon" in note and "ghostnas lut build" in note
    from ghostnas.cost.profiler import profilers_for

    profilers_for(str(tmp_path / "x" / "lut.csv"), load_space("tiny"))
    assert "Xeon" in capsys.readouterr().err


def test_head_entry_is_keyed_and_timed_at_the_final_feature_size():
    arch = load_space("tiny").sample_arch(0)
    head = arch_entries(arch.resolve())[-1]
    final_h = arch.resolve().final_hw[0]
    assert head.kind == "head" and head.h == final_h < 7 and f"in:{final_h}x{final_h}x" in head.key
    module, shape = entry_module(head)
    assert shape[-2:] == (final_h, final_h)
    old = Entry.from_key(f"head|in:{head.cin}|hidden:{head.mid}|classes:{head.classes}")
    assert old.h == 7  # tables from before: their head was timed on 7x7, and is read so


def test_eta_comes_from_the_work_done_not_the_first_item(monkeypatch):
    """Items whose time grows with their MACs, small ones first (as a build meets them): the ETA
    after 10% of the items is within 30% of the time actually left."""
    import ghostnas.cost.lut.build as build

    clock = {"t": 0.0}
    monkeypatch.setattr(build.time, "perf_counter", lambda: clock["t"])
    macs = sorted([1e6 * (1 + (i * 37) % 100) for i in range(200)])
    cost = [0.05 + 2e-8 * m for m in macs]  # seconds: a fixed part and a part per MAC
    eta = build.Eta(macs)
    for c in cost[:20]:
        clock["t"] += c
        eta.tick()
    left = sum(cost[20:])
    assert abs(eta.seconds_left() - left) / left < 0.3
    assert "20/200 (10%)" in eta.line("entries")


def test_dfc_blocks_have_their_own_entries_and_v1_keys_are_unchanged():
    space = load_space("tiny-v2")
    entries = {e.key: e for e in space_entries(space)}
    dfc = [e for e in entries.values() if e.attn == "dfc"]
    assert dfc and all(k.endswith("|attn:dfc") for k, e in entries.items() if e.attn == "dfc")
    assert all(Entry.from_key(k) == e for k, e in entries.items())
    v1_keys = {e.key for e in space_entries(load_space("tiny"))}
    assert v1_keys <= set(entries)  # a V1 block is keyed as before the choice existed
    arch = load_arch("paper-v2-1.0x")
    keys = [e.key for e in arch_entries(arch.resolve())]
    assert sum(k.endswith("|attn:dfc") for k in keys) == 14
    module, shape = entry_module(Entry.from_key(next(k for k in keys if "dfc" in k)))
    assert hasattr(module.ghost1, "short_conv")


@pytest.mark.parametrize("fixture, machine, cpu, emulated", [
    ("rpi4.txt", "aarch64", "Raspberry Pi 4 Model B Rev 1.4 (4x Cortex-A72)", False),
    ("rpi5.txt", "aarch64", "Raspberry Pi 5 Model B Rev 1.0 (4x Cortex-A76)", False),
    ("android-sm8450.txt", "aarch64", "Qualcomm Technologies, Inc SM8450 (4x Cortex-A510, 3x Cortex-A710, 1x Cortex-X2)", False),
    ("qemu-user-on-x86.txt", "aarch64", "AMD EPYC 7B13", True),
    ("qemu-user-on-x86.txt", "x86_64", "AMD EPYC 7B13", False),
])
def test_device_cpu_is_named_on_arm_boards_and_phones(fixture, machine, cpu, emulated):
    from ghostnas.device_runner import describe_cpu

    text = (Path(__file__).parent / "fixtures" / "cpuinfo" / fixture).read_text()
    info = describe_cpu(text, None, machine)
    assert info["cpu"] == cpu and info["emulated"] is emulated
    # the device tree's model names a board whose cpuinfo has none
    assert describe_cpu(text.replace("Model\t\t: ", "X: "), "Raspberry Pi 4 Model B\x00", machine)["cpu"].startswith(
        "Raspberry Pi 4 Model B") or "Model\t\t" not in text


def test_a_table_timed_under_emulation_is_no_latency_budget_unless_allowed(tmp_path):
    from ghostnas.cost.profiler import profilers_for

    lut = tiny_lut_copy(tmp_path, emulated=True)
    with pytest.raises(GhostNASError, match="timed under emulation.*--allow-emulated"):
        profilers_for(lut, load_space("tiny"))
    assert [p.name for p in profilers_for(lut, load_space("tiny"), allow_emulated=True)][-1] == "latency_ms"


def test_a_tiny_max_entries_still_samples_every_position():
    from ghostnas.cost.lut.keys import position, select_entries

    space = load_space("tiny")
    chosen = select_entries(space, 1, seed=0)
    blocks = [e for e in chosen if e.kind == "block"]
    positions = {position(e) for e in select_entries(space, None, 0) if e.kind == "block"}
    assert {position(e) for e in blocks} == positions and len(blocks) == len(positions)
    assert {"stem", "final", "head"} <= {e.kind for e in chosen}
