"""The evidence benchmark runs end to end from a clone, on a toy scale (the real run: REPORT.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def run(args, tmp_path):
    cmd = [sys.executable, "benchmarks/reproduce_paper.py", "--levels", "1.0", "--confirm", "0", "--seeds", "3", "4",
           "--eval-protocol", "smoke", "--data", "synthetic:120", "--threads", "1", "--out", str(tmp_path), *args]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    return pd.read_csv(tmp_path / "paper_vs_search-synthetic_120.csv")


def test_reproduce_paper_writes_its_table_and_report_and_resumes(tmp_path):
    table = run(["--trials", "2"], tmp_path)
    required = ["level", "budget", "model", "evaluator", "data", "params", "macs", "latency_ms", "acc_mean",
                "acc_sd", "seeds", "lead_points", "lead_se_points"]  # the columns the issue names
    assert required == list(table.columns[:len(required)])
    assert sorted(zip(table.budget.str.endswith("ms"), table.model, table.evaluator.fillna(""))) == [
        (False, "found", "proxy"), (False, "paper", ""), (True, "found", "proxy"), (True, "paper", "")]
    paper = table[table.model == "paper"].iloc[0]
    assert paper.params == 5_182_508 and paper.macs == 141_150_512  # paper-1.0x (a budget most samples meet: fast)
    found = table[table.model == "found"]
    assert (found[found.budget.str.endswith("MACs")].macs <= paper.macs).all()
    assert (table.acc_sd >= 0).all() and table.acc_mean.between(0, 1).all()
    assert found.lead_points.notna().all() and (found.lead_se_points >= 0).all()
    assert (table.split == "val").all() and (table.seeds == "3 4").all()  # no test split: validation
    report = (tmp_path / "REPORT-synthetic_120.md").read_text()
    assert "## Verdict per budget" in report and "| found:" in report and "MMACs by part" in report

    work = tmp_path / "paper_vs_search-synthetic_120"
    evals = json.loads((work / "evals.json").read_text())
    run(["--trials", "2"], tmp_path)  # resumes: trains nothing new
    assert json.loads((work / "evals.json").read_text()) == evals


def test_reproduce_paper_trains_the_supernet_it_searches_with(tmp_path):
    table = run(["--supernet", str(tmp_path / "sn"), "--supernet-recipe", "smoke", "--supernet-trials", "3",
                 "--evaluators", "supernet", "--kinds", "macs"], tmp_path)
    assert (tmp_path / "sn" / "supernet.pt").exists()  # trained first, as the search needs it
    assert list(table.evaluator.fillna("")) == ["", "supernet"]
    runs = tmp_path / "paper_vs_search-synthetic_120" / "runs"
    assert set(pd.read_csv(runs / "1x-macs-supernet" / "trials.csv").evaluator) == {"supernet"}
