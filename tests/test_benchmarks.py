"""The evidence benchmark runs end to end from a clone, on a toy scale (the real run: REPORT.md)."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def test_reproduce_paper_writes_its_table_and_report_and_resumes(tmp_path):
    cmd = [sys.executable, "benchmarks/reproduce_paper.py", "--levels", "0.5", "--trials", "2",
           "--confirm", "0", "--seeds", "3", "4", "--long-seeds", "0", "--data", "synthetic:120",
           "--threads", "1", "--out", str(tmp_path)]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    table = pd.read_csv(tmp_path / "paper_vs_search.csv")
    required = ["level", "budget", "model", "params", "macs", "latency_ms", "acc_mean", "acc_std",
                "seeds", "acc_long"]  # the columns the issue names
    assert required == list(table.columns[:len(required)])
    assert sorted(zip(table.budget.str.endswith("ms"), table.model)) == [
        (False, "found"), (False, "paper"), (True, "found"), (True, "paper")]
    paper = table[table.model == "paper"].iloc[0]
    assert paper.params == 2_587_292 and paper.macs == 42_328_152  # paper-0.5x
    found = table[table.model == "found"]
    assert (found[found.budget.str.endswith("MACs")].macs <= paper.macs).all()
    assert (table.acc_std >= 0).all() and table.acc_mean.between(0, 1).all()
    report = (tmp_path / "REPORT.md").read_text()
    assert "## Verdict per level" in report and "| found:" in report  # verdicts and the block table

    evals = json.loads((tmp_path / "paper_vs_search" / "evals.json").read_text())
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)  # resumes: trains nothing new
    assert json.loads((tmp_path / "paper_vs_search" / "evals.json").read_text()) == evals
