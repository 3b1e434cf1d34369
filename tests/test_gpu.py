"""The GPU paths (CUDA, mixed precision). Skipped where no GPU is present, which is where CI runs;
`benchmarks/gpu_check.sh` runs them on a lent GPU machine."""

import pytest
import torch

from ghostnas.data import load_data
from ghostnas.train import amp_dtype_for, get_protocol, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# all 1,437 training digits, 4 epochs: about 60 SGD steps
PROTOCOL = get_protocol("proxy", epochs=4, train_subset=None)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits")


def test_gpu_is_picked_with_mixed_precision_and_learns(digits):
    r = train("paper-0.5x", digits, PROTOCOL, keep_model=True)
    assert r.device.startswith("cuda")
    assert next(r.model.parameters()).is_cuda
    assert amp_dtype_for(torch.device("cuda")) in (torch.bfloat16, torch.float16)
    assert all(torch.isfinite(p).all() for p in r.model.parameters())  # weights stay fp32 and finite
    assert r.val_acc > 0.5, r.history  # 10 classes: chance is 0.1


def test_gpu_and_cpu_learn_alike(digits):
    gpu = train("paper-0.5x", digits, PROTOCOL)
    cpu = train("paper-0.5x", digits, PROTOCOL, device="cpu")
    assert abs(gpu.val_acc - cpu.val_acc) < 0.15, (gpu.val_acc, cpu.val_acc)


def test_gpu_checkpoint_resumes_and_loads_on_cpu(digits, tmp_path, interrupt_after):
    p = PROTOCOL.replace(epochs=2)

    with pytest.raises(interrupt_after.error):
        train("paper-0.5x", digits, p, out_dir=tmp_path, on_epoch=interrupt_after(1))
    first = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert first["epoch"] == 1 and not next(iter(first["model"].values())).is_cuda
    resumed = train("paper-0.5x", digits, p, out_dir=tmp_path, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[0] == first["history"][0]


def test_search_trains_its_trials_on_the_gpu(tmp_path):
    pytest.importorskip("optuna")  # not on the lent machine unless carried as a wheel
    from ghostnas.search import SearchConfig, run_search

    torch.cuda.reset_peak_memory_stats()
    summary = run_search(SearchConfig(budgets=("3MFLOPs",), space="tiny", data="digits", trials=3,
                                      out=str(tmp_path), progress=False, study="gpu"))
    assert summary["trials"].get("complete", 0) + summary["trials"].get("pruned", 0) >= 3
    assert torch.cuda.max_memory_allocated() > 0  # the trials' models lived on the GPU
