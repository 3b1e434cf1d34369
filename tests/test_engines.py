"""Ray Tune and NNI engines on a tiny budget: same results format as the Optuna engine."""

import subprocess
import threading
import time

import pandas as pd
import pytest

from ghostnas.search import SearchConfig, run_search


def tiny(tmp_path, engine, **kw):
    return SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke",
                        trials=3, out=str(tmp_path), progress=False, study=engine, engine=engine, **kw)


def listening_sockets() -> list[str]:
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if any(n in line for n in ("ray", "gcs_server", "raylet"))]


@pytest.mark.slow
def test_ray_engine_local_cluster_on_loopback(tmp_path):
    seen: list[str] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.extend(listening_sockets())
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        summary = run_search(tiny(tmp_path, "ray", cpus_per_trial=1))
    finally:
        stop.set()
        watcher.join()
    import ray

    assert not ray.is_initialized()  # the engine stops the Ray it started
    assert seen, "no Ray server was seen listening"
    for line in seen:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")), line
    df = pd.read_csv(tmp_path / "ray" / "trials.csv")
    assert len(df) == 3 and set(df.engine) == {"ray"}
    assert (df.macs <= 3e6).all()
    assert summary["best"]["val_acc"] >= 0


@pytest.mark.slow
def test_nni_engine_in_process(tmp_path):
    summary = run_search(tiny(tmp_path, "nni", nni_strategy="evolution"))
    df = pd.read_csv(tmp_path / "nni" / "trials.csv")
    assert len(df) == 3 and set(df.engine) == {"nni"}
    assert (df.macs <= 3e6).all()
    assert "best" in summary
