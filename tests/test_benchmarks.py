"""The evidence benchmark runs end to end from a clone, on a toy scale (the real run: REPORT.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def test_reproduce_paper_writes_its_table_and_report_and_resumes(tmp_path):
    cmd = [sys.executable, "benchmarks/reproduce_paper.py", "--levels", "0.5", "--trials", "2",
           "--supernet", str(tmp_path / "sn"), "--supernet-recipe", "smoke", "--supernet-trials", "3",
           "--confirm", "0", "--seeds", "3", "4", "--eval-protocol", "smoke", "--data", "synthetic:120",
           "--threads", "1", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    assert (tmp_path / "sn" / "supernet.pt").exists()  # the supernet the search needs, trained first
    table = pd.read_csv(tmp_path / "paper_vs_search-synthetic_120.csv")
    required = ["level", "budget", "model", "evaluator", "data", "params", "macs", "latency_ms", "acc_mean",
                "acc_sd", "seeds", "lead_points", "lead_se_points"]  # the columns the issue names
    assert required == list(table.columns[:len(required)])
    assert sorted(zip(table.budget.str.endswith("ms"), table.model, table.evaluator.fillna(""))) == [
        (False, "found", "proxy"), (False, "found", "supernet"), (False, "paper", ""),
        (True, "found", "proxy"), (True, "found", "supernet"), (True, "paper", "")]
    paper = table[table.model == "paper"].iloc[0]
    assert paper.params == 2_587_292 and paper.macs == 42_328_152  # paper-0.5x
    found = table[table.model == "found"]
    assert (found[found.budget.str.endswith("MACs")].macs <= paper.macs).all()
    assert (table.acc_sd >= 0).all() and table.acc_mean.between(0, 1).all()
    assert found.lead_points.notna().all() and (found.lead_se_points >= 0).all()
    assert (table.split == "val").all() and (table.seeds == "3 4").all()  # no test split: validation
    report = (tmp_path / "REPORT-synthetic_120.md").read_text()
    assert "## Verdict per budget" in report and "| found:" in report and "MMACs by part" in report

    work = tmp_path / "paper_vs_search-synthetic_120"
    evals = json.loads((work / "evals.json").read_text())
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)  # resumes: trains nothing new
    assert json.loads((work / "evals.json").read_text()) == evals
