import json
import subprocess
import sys

import pytest

from ghostnas.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_arch_show_json(capsys):
    code, out, _ = run_cli(capsys, "arch", "show", "paper-1.0x", "--json")
    data = json.loads(out)
    assert code == 0 and data["params"] == 5_182_508 and data["macs"] == 141_150_512
    assert isinstance(data["params"], int) and isinstance(data["macs"], int)
    assert len(data["layers"]) == 16 + 3


def test_arch_show_table(capsys):
    code, out, _ = run_cli(capsys, "arch", "show", "paper-0.5x", "--resolution", "32")
    assert code == 0 and "blocks.6.3" in out and "2,587,292" in out


def test_arch_sample_writes_loadable_json(capsys, tmp_path):
    out_file = tmp_path / "a.json"
    code, out, _ = run_cli(capsys, "arch", "sample", "--seed", "4", "--out", str(out_file), "--json")
    assert code == 0
    sampled = json.loads(out)
    code, out, _ = run_cli(capsys, "arch", "show", str(out_file), "--json")
    assert json.loads(out)["macs"] == sampled["macs"]


def test_space_show(capsys):
    code, out, _ = run_cli(capsys, "space", "show", "--json")
    data = json.loads(out)
    assert data["paper_points"] == ["paper-0.5x", "paper-1.0x", "paper-1.3x", "paper-v2-1.0x", "paper-v2-1.3x"]
    assert data["size"] > 10**20 and "s6_b3_exp" in data["labels"]


@pytest.mark.parametrize("argv, needle", [
    (["arch", "show", "paper-9x"], "unknown architecture 'paper-9x'"),
    (["space", "show", "nowhere.yaml"], "search space 'nowhere.yaml' not found"),
])
def test_errors_are_one_line_exit_2(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and needle in err and err.startswith("ghostnas: error:")


def test_console_script_help():
    done = subprocess.run([sys.executable, "-m", "ghostnas", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "arch" in done.stdout
    done = subprocess.run([sys.executable, "-m", "ghostnas", "arch", "show"], capture_output=True, text=True)
    assert done.returncode == 2  # argparse usage error
