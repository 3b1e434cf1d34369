"""Ray Tune and NNI engines on a tiny budget: same results format as the Optuna engine."""

import subprocess
import threading
import time

import pandas as pd
import pytest

from ghostnas.search import SearchConfig, run_search


def tiny(tmp_path, engine, **kw):
    # 5 smoke epochs: every network of 8 tried learns (0.25-0.61 on digits, chance 0.1); at 3 they
    # read 0.09-0.25, so whether the best of 3 beat chance came down to rounding
    return SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", protocol="smoke", epochs=5,
                        trials=kw.pop("trials", 3), out=str(tmp_path), progress=False, study=engine,
                        engine=engine, **kw)


def listening_sockets() -> list[str]:
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if any(n in line for n in ("ray", "gcs_server", "raylet"))]


def check_engine_results(tmp_path, engine: str, summary: dict, trials: int = 3) -> None:
    """What every engine must leave: the same trials table, scores that are accuracies of trained
    networks, and the best trials' weights kept for `export best --with-weights`."""
    df = pd.read_csv(tmp_path / engine / "trials.csv")
    assert len(df) == trials and set(df.engine) == {engine} and set(df.evaluator) == {"proxy"}
    assert (df.macs <= 3e6).all()
    done = df[df.state == "complete"]
    assert set(df.state) <= {"complete", "pruned"}  # Ray's ASHA may stop some early
    assert len(done) >= 1 and done.val_acc.between(0.0, 1.0).all() and done.val_acc.max() > 0.17  # chance: 0.1 +- 0.027 on 128 images
    assert summary["best"]["val_acc"] == done.val_acc.max()
    kept = {p.name for p in (tmp_path / engine / "weights").glob("trial_*.pt")}
    assert f"trial_{summary['best']['trial']}.pt" in kept and len(kept) == min(3, len(done))


@pytest.mark.slow
def test_ray_engine_on_loopback_scores_by_the_supernet(tmp_path):
    """--engine ray starting its own Ray: every server listens on loopback only, Ray is stopped
    after, and with --supernet each worker scores by inherited weights as the driver would (not
    by a proxy training; the two-node test below covers proxy trials on Ray). One Ray start for
    both checks: a start costs ~8 s of the suite."""
    from ghostnas.data import load_data
    from ghostnas.results import ranked_arch
    from ghostnas.search.evaluators import SupernetEvaluator
    from ghostnas.space import load_space
    from ghostnas.supernet import get_supernet_protocol, train_supernet
    from ghostnas.train import get_protocol

    sn, proxy = tmp_path / "sn", get_protocol("smoke")
    data = load_data("digits", seed=proxy.seed, folder_size=proxy.resolution)
    train_supernet(load_space("tiny"), data, get_supernet_protocol("smoke"), sn)
    seen: list[str] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.extend(listening_sockets())
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        summary = run_search(tiny(tmp_path, "ray", cpus_per_trial=1, supernet=str(sn)))
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
    assert len(df) == 3 and set(df.state) == {"complete"} and set(df.evaluator) == {"supernet"}
    arch, weights, _ = ranked_arch(tmp_path / "ray")
    assert weights is not None  # kept for export best --with-weights
    assert summary["best"]["val_acc"] == SupernetEvaluator(sn, data, proxy.resolution).evaluate(arch)["val_acc"]


@pytest.mark.slow
def test_nni_engine_in_process(tmp_path):
    summary = run_search(tiny(tmp_path, "nni", nni_strategy="evolution"))
    check_engine_results(tmp_path, "nni", summary)


@pytest.mark.slow
def test_ray_engine_on_a_two_node_cluster(tmp_path, monkeypatch):
    """Two raylets on 127.0.0.1 (Ray's own cluster utility) joined with --address: trials run on
    both nodes, every Ray server listens on loopback only, and the study's journal holds each
    trial exactly once."""
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    from ghostnas.results import load_study

    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # servers bind 127.0.0.1
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        listening = listening_sockets()
        summary = run_search(tiny(tmp_path, "ray", trials=4, address=cluster.address, cpus_per_trial=1))
        ray.shutdown()  # the search joined a cluster it did not start, so it leaves it running
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert len(listening) >= 3  # the GCS and two raylets at least
    for line in listening:
        assert line.split()[3].startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")), line
    df = pd.read_csv(tmp_path / "ray" / "trials.csv")
    assert len(df.node.dropna().unique()) == 2, df[["number", "node"]]
    trials = [t for t in load_study(tmp_path / "ray").get_trials(deepcopy=False) if not t.user_attrs.get("rejected")]
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == 4 and sorted(df.number) == sorted(numbers)
    check_engine_results(tmp_path, "ray", summary, trials=4)
