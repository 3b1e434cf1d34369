import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests share 2 cores; keep torch to one thread so timings and runs stay predictable."""
    try:
        import torch
    except ImportError:  # the torch-free tests
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


class TrainingInterrupted(Exception):
    """Raised from a training's on_epoch callback to stop it part-way (resume tests)."""


@pytest.fixture
def interrupt_after():
    """``interrupt_after(n)``: an on_epoch callback that raises ``interrupt_after.error`` after epoch n."""
    def make(n: int):
        def on_epoch(epoch: int, acc: float) -> None:
            if epoch == n:
                raise TrainingInterrupted
        return on_epoch

    make.error = TrainingInterrupted
    return make
