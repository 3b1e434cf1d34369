"""The evidence benchmark runs end to end from a clone, on a toy scale (the real run: REPORT.md)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import reproduce_paper  # noqa: E402


def run(args, tmp_path, processes=1):
    """The benchmark in ``processes`` processes at once (sharing its work); each one's output."""
    cmd = [sys.executable, "benchmarks/reproduce_paper.py", "--levels", "1.0", "--confirm", "0", "--seeds", "3", "4",
           "--eval-protocol", "smoke", "--data", "synthetic:120", "--threads", "1", "--out", str(tmp_path), *args]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(processes)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * processes, outputs
    return pd.read_csv(tmp_path / "paper_vs_search-synthetic_120.csv"), outputs


def test_reproduce_paper_writes_its_table_and_report_and_resumes(tmp_path):
    # two processes share the work: each training is done once, by one of them
    table, outputs = run(["--trials", "2", "--kinds", "macs", "--extra-seeds"], tmp_path, processes=2)
    trained = [line for out in outputs for line in out.splitlines() if " smoke seed " in line]
    assert len(trained) == 4 and len(set(line.split(":")[0] for line in trained)) == 4, outputs
    assert sum("another process is writing the table" in out for out in outputs) <= 1
    required = ["level", "budget", "model", "evaluator", "data", "params", "macs", "latency_ms", "acc_mean",
                "acc_sd", "seeds", "lead_points", "lead_se_points"]  # the columns the issue names
    assert required == list(table.columns[:len(required)])
    assert list(zip(table.model, table.evaluator.fillna(""))) == [("paper", ""), ("found", "proxy")]
    paper = table[table.model == "paper"].iloc[0]
    assert paper.params == 5_182_508 and paper.macs == 141_150_512  # paper-1.0x (a budget most samples meet: fast)
    found = table[table.model == "found"]
    assert (found.macs <= paper.macs).all() and table.latency_ms.notna().all()  # measured, every network
    assert (table.acc_sd >= 0).all() and table.acc_mean.between(0, 1).all()
    assert found.lead_points.notna().all() and (found.lead_se_points >= 0).all()
    assert found.val_lead_points.notna().all()  # what the search's own scores expected
    assert (table.split == "val").all() and (table.seeds == "3 4").all()  # no test split: validation
    report = (tmp_path / "REPORT-synthetic_120.md").read_text()
    assert "## Verdict per budget" in report and "| found:" in report and "MMACs by part" in report
    assert "proxy searches' candidate evaluations" in report  # the runtime, stated
    assert "scores expected" in report and "The proxy searches' own scores expected" in report

    work = tmp_path / "paper_vs_search-synthetic_120"
    evals = json.loads((work / "evals.json").read_text())
    run(["--trials", "2", "--kinds", "macs", "--extra-seeds"], tmp_path)  # resumes: trains nothing new
    assert json.loads((work / "evals.json").read_text()) == evals
    _, (status,) = run(["--trials", "2", "--kinds", "macs", "--extra-seeds", "--status"], tmp_path)
    assert "5 of 5 units done" in status and "trainings cached: 4" in status, status

    # one more seed for both networks exactly when the lead on seeds 3-4 was undecided
    more, _ = run(["--trials", "2", "--kinds", "macs", "--extra-seeds", "6"], tmp_path)
    f = found.iloc[0]
    wanted = reproduce_paper.undecided(f.lead_points, f.lead_se_points)
    assert list(more.seeds) == (["3 4 6", "3 4 6"] if wanted else ["3 4", "3 4"])
    assert len(json.loads((work / "evals.json").read_text())) == 4 + 2 * wanted
    _, (status,) = run(["--trials", "2", "--kinds", "macs", "--extra-seeds", "6", "--status"], tmp_path)
    assert f"7 of 7 units done ({0 if wanted else 2} of them not needed)" in status, status


class FakeEvals:
    """Cached accuracies by (network, seed), as Evals answers them."""

    def __init__(self, accs):
        self.accs = accs

    def has(self, arch, protocol, seed, data=None):
        return (arch.name, seed) in self.accs

    def acc(self, arch, protocol, seed, data=None):
        return self.accs[(arch.name, seed)]


def test_extra_seeds_only_while_a_lead_is_undecided():
    from ghostnas import paper_arch

    paper, found = paper_arch(1.0), paper_arch(0.5).replace(name="found")

    def wants(found_accs, extra=6, paper_accs=(0.90, 0.90, 0.90, 0.90)):
        accs = {("found", s): a for s, a in zip((3, 4, 5, 6), found_accs)}
        accs.update({(paper.name, s): a for s, a in zip((3, 4, 5, 6), paper_accs)})
        return reproduce_paper.wants_extra_seed(found, paper, extra, FakeEvals(accs), "reference", None,
                                                [3, 4, 5], [6, 7])

    assert wants((0.905, 0.915, 0.898)) is True  # +0.6 points, SE 0.5: undecided
    assert wants((0.909, 0.910, 0.911)) is False  # +1.0, SE 0.06: met
    assert wants((0.895, 0.902, 0.897)) is False  # behind: more seeds cannot make it a lead
    assert wants((0.900, 0.901, 0.9025)) is False  # +0.12 ± 0.07: the target is out of reach
    assert wants((0.905, 0.915)) is None  # seed 5 not trained yet
    assert wants((0.905, 0.915, 0.898), extra=7) is None  # seed 6 not trained yet
    assert wants((0.905, 0.915, 0.898, 0.911), extra=7) is True  # still undecided on 4 seeds
    assert wants((0.905, 0.915, 0.898, 0.930), extra=7) is True
    assert wants((0.905, 0.915, 0.898, 0.880), extra=7) is False  # seed 6 put it behind


def test_a_network_two_searches_found_is_trained_once():
    from ghostnas import paper_arch

    small, large = paper_arch(0.5), paper_arch(1.0)
    found = {"1x-macs": small.replace(name="x"), "1x-latency": large, "1.3x-macs": None, "1.3x-latency": small}
    studies = list(found)
    assert reproduce_paper.first_of_its_kind("1.3x-latency", studies, found.get).name == "found-1x-macs"
    assert reproduce_paper.first_of_its_kind("1x-latency", studies, found.get).name == "found-1x-latency"
    assert reproduce_paper.first_of_its_kind("1x-macs", studies, found.get).name == "found-1x-macs"


def test_a_floored_budget_is_a_range_search_reads():
    from ghostnas.search import parse_budget

    macs = parse_budget(reproduce_paper.with_floor("141150512MACs", 0.8))
    assert (macs.floor, macs.limit) == (112920410, 141150512)  # rounded up: never under 0.8
    ms = parse_budget(reproduce_paper.with_floor("3.401ms", 0.8))
    assert (ms.kind, ms.floor, ms.limit) == ("latency_ms", 2.721, 3.401)


def test_a_latency_budget_is_one_the_paper_network_fits():
    from ghostnas.search import parse_budget

    for ms in (2.302184728339287, 3.400289445948606, 4.899072951505367, 2.302, 0.1 + 0.2, 7.0):
        budget = reproduce_paper.latency_budget(ms)
        assert ms <= parse_budget(budget).limit < ms + 0.001 + 1e-12, (ms, budget)
    assert reproduce_paper.latency_budget(2.302184728339287) == "2.303ms"  # not 2.302: under the paper's time


def test_reproduce_paper_trains_the_supernet_and_searches_a_latency_budget(tmp_path):
    table, _ = run(["--supernet", str(tmp_path / "sn"), "--supernet-recipe", "smoke", "--supernet-trials", "3",
                 "--evaluators", "supernet", "--kinds", "latency"], tmp_path)
    assert (tmp_path / "sn" / "supernet.pt").exists()  # trained first, as the search needs it
    assert list(zip(table.model, table.evaluator.fillna(""))) == [("paper", ""), ("found", "supernet")]
    paper, found = table.iloc[0], table.iloc[1]
    assert paper.budget.endswith("ms") and found.latency_ms > 0
    runs = tmp_path / "paper_vs_search-synthetic_120" / "runs"
    trials = pd.read_csv(runs / "1x-latency-supernet" / "trials.csv")
    assert set(trials.evaluator) == {"supernet"}
    assert trials.baseline.iloc[0] and trials.macs.iloc[0] == paper.macs  # the paper network is trial 0
    assert "measured" in (tmp_path / "REPORT-synthetic_120.md").read_text()  # the verdict's latencies

    # Once every supernet search is done the supernet is not needed: deleted, it is not retrained.
    shutil.rmtree(tmp_path / "sn")
    again, _ = run(["--supernet", str(tmp_path / "sn"), "--supernet-recipe", "smoke", "--supernet-trials", "3",
                    "--evaluators", "supernet", "--kinds", "latency"], tmp_path)
    assert not (tmp_path / "sn").exists() and list(again.acc_mean) == list(table.acc_mean)
    _, (status,) = run(["--supernet", str(tmp_path / "sn"), "--supernet-recipe", "smoke", "--evaluators", "supernet",
                        "--kinds", "latency", "--status"], tmp_path)
    assert "[-] supernet: not needed" in status, status


def test_the_lead_a_search_expected_pairs_the_paper_network_scored_alike(tmp_path):
    confirmed = {"7": {"baseline": False, "val_accs": {"0": 0.73, "1": 0.71}},
                 "0": {"baseline": True, "val_accs": {"0": 0.69, "1": 0.71}}}
    (tmp_path / "confirm.json").write_text(json.dumps(confirmed))
    assert abs(reproduce_paper.val_lead(tmp_path, 0.72) - 2.0) < 1e-9  # means over the same seeds
    del confirmed["0"]
    (tmp_path / "confirm.json").write_text(json.dumps(confirmed))
    assert reproduce_paper.val_lead(tmp_path, 0.72) is None  # the paper network was not confirmed
