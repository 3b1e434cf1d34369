"""Defaults shared by the CLI and the library; importable without torch (the CLI starts fast)."""

# The search's and the trainer's default data. Plain mnist5k saturates (every reasonable network
# reaches 95-98%, within validation noise), so it cannot rank networks; the cluttered variant of
# the same 5,000 digits leaves room for capacity to matter (see benchmarks/proxy_fidelity.py).
DEFAULT_DATA = "mnist5k-clutter"
DATA_SPECS = ("mnist5k, mnist5k-clutter, digits, fashion-mnist[:PATH], mnist:PATH, cifar10:PATH, "
              "folder:PATH, imagenet:PATH, synthetic[:N]")
CHECK_LATENCY = 3  # `search` with a latency budget: time up to this many best found networks here
# `supernet train`'s recipe, by measurement (docs/supernet.md): the best of three on mnist5k-clutter
# at equal time; on Fashion-MNIST it ranks like uniform sampling overall but, unlike it, not the
# best networks worst.
SUPERNET_RECIPE = "progressive"
CONFIRM_SEEDS = 2  # `search --confirm`: extra seeds per finalist; with the trial's own, a mean over 3
