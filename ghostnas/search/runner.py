"""A search from start to finish: the context, the engine's trials, then `--confirm` and the
latency check, then the results.

A study lives in one run folder (``results/runs/<study>/``): the Optuna journal (``study.journal``,
see study.py), the search's ``config.json``, the trials table, a summary, plots and the best
trials' proxy weights. Engines are found by name (``context.ENGINES``) and each runs the one trial
pipeline (pipeline.py); this module dispatches to them and is imported by none of them.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from ..arch import Arch
from ..errors import GhostNASError
from ..io import atomic_write_text, make_dir
from .context import ENGINES, Context, SearchConfig, check_config, load_evaluator, make_context

def run_search(cfg: SearchConfig) -> dict[str, Any]:
    """Run (or resume) a search; returns the summary written to ``summary.json``."""
    ctx = make_context(cfg)
    load_evaluator(ctx)
    make_dir(ctx.run_dir, "run folder")
    check_config(ctx)
    from ..io import sigint_watch
    from ..results import write_results

    module, _, function = ENGINES[cfg.engine].partition(":")
    run_engine = getattr(importlib.import_module(module), function)
    with sigint_watch():
        try:
            run_engine(ctx)
        except KeyboardInterrupt:  # the tables may skip fast trials (study.refresh_tables): catch up
            write_results(ctx.run_dir, plots=False)
            raise
        if cfg.confirm:
            confirm_best(ctx, cfg.confirm)
        if cfg.check_latency and any(b.kind == "latency_ms" for b in ctx.budgets):
            check_latency(ctx, cfg.check_latency)
        return write_results(ctx.run_dir, plots=True)


def confirm_best(ctx: Context, k: int) -> dict[str, Any]:
    """Re-train the ``k`` best found networks and the baseline on ``confirm_seeds`` more seeds.

    Why: one proxy run's seed noise is several points (results/benchmarks/proxy_fidelity.md), so
    the trial that scored best is partly a lucky seed (its 3-seed mean came out 3-7 points lower
    in results/REPORT-mnist5k-clutter.md). Ranking the finalists by their mean over seeds picks more honestly.
    With ``confirm_protocol`` (e.g. ``long``) the finalists are re-trained under that protocol
    instead, and ranked by it alone (the trial's proxy score is not mixed in): a short proxy
    favours networks that learn fast, and a longer training is the closer judge of the end result.
    Results go to ``confirm.json`` in the run folder after each training (resumable)."""
    import pandas as pd

    from ..io import merge_json
    from ..results import load_study, rank_trials, trials_frame
    from ..train import get_protocol, train

    cfg = ctx.config
    protocol = ctx.protocol
    if cfg.confirm_protocol is not None:
        protocol = get_protocol(cfg.confirm_protocol).replace(seed=ctx.protocol.seed)
    # a supernet's score is no training run: its finalists are trained on one more seed (0-2, not
    # 1-2), and the trial's score never counts as one of them
    trained = ctx.evaluator.name == "proxy"
    same = protocol == ctx.protocol and trained
    path = ctx.run_dir / "confirm.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for key, entry in done.items():  # entries written before protocols were recorded: the trials'
        if entry.get("protocol", ctx.protocol.to_dict()) != protocol.to_dict():
            raise GhostNASError(f"{path}: trial {key} was confirmed under protocol "
                                f"{entry.get('protocol', ctx.protocol.to_dict())['name']!r}, not "
                                f"{protocol.name!r}; use that --confirm-protocol, or delete the file "
                                "to confirm again")
    top = rank_trials(ctx.run_dir, trials_frame(load_study(ctx.run_dir)))
    finalists = pd.concat([top[~top.baseline].head(k), top[top.baseline].head(1)])
    for _, row in finalists.iterrows():
        key = str(int(row["number"]))
        accs = dict(done.get(key, {}).get("val_accs", {str(protocol.seed): float(row["val_acc"])} if same else {}))
        arch = trial_arch(ctx, row)
        for seed in range(protocol.seed + trained, protocol.seed + 1 + cfg.confirm_seeds):
            if str(seed) not in accs:
                accs[str(seed)] = train(arch, ctx.data, protocol.replace(seed=seed),
                                        device=cfg.device).val_acc
                done = merge_json(path, {key: {"baseline": bool(row["baseline"]), "val_accs": accs,
                                               "protocol": protocol.to_dict()}})
    return done


def trial_arch(ctx: Context, row) -> Arch:
    from ..results import trial_arch as arch_of_row

    return arch_of_row(ctx.space, row, name=f"{ctx.run_dir.name}-t{int(row['number'])}")


def check_latency(ctx: Context, k: int) -> dict[str, Any]:
    """Time the best found networks here, end to end, and record whether each meets the latency
    budget when measured rather than predicted.

    Why: a table predicts a whole network within a few percent (`lut check`: MAPE 2-5%), so a
    network predicted just under the budget can measure just over it (benchmarks/reproduce_paper.py,
    1.0x: predicted under 8.96 ms, measured 9.16 ms). In rank order (after ``--confirm``, the
    finalists by their mean first), networks are timed until one fits, at least every confirmed
    finalist and at most ``k`` (more when there are more finalists); the baseline is timed too.
    The results then rank a network measured over the budget below every other (so `export
    best` exports one that fits). Only where this machine can time like the table was built (see
    ``LatencyModel.why_not_timeable_here``); elsewhere (a phone's table) the prediction stands.
    Written to ``latency_check.json`` after each timing; a rerun re-times nothing it has."""
    import pandas as pd

    from ..cost.lut import LatencyModel
    from ..io import merge_json
    from ..cost.profiler import MeasuredLatencyProfiler
    from ..results import load_study, rank_trials, trials_frame

    lut = LatencyModel.load(ctx.config.lut)
    why = lut.why_not_timeable_here()
    if why:
        print(f"latency budget met by the table's prediction only (not timed here: {why})",
              file=sys.stderr, flush=True)  # stderr: stdout may be --json's one document
        return {}
    limit = next(b.limit for b in ctx.budgets if b.kind == "latency_ms")
    build = {"lut": str(lut.path), "built": (lut.meta.get("device") or {}).get("date"),
             "reference": lut.meta.get("reference"), "budget_ms": limit}
    path = ctx.run_dir / "latency_check.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    if any(e.get("build") != build for e in done.values()):  # timed for another table or budget
        done = {key: e for key, e in done.items() if e.get("build") == build}
        atomic_write_text(path, json.dumps(done, indent=1) + "\n")
    top = rank_trials(ctx.run_dir, trials_frame(load_study(ctx.run_dir)))
    found = top[~top.baseline]
    must = int(found.val_acc_mean.notna().sum()) if "val_acc_mean" in found else 0
    timed, fits = 0, False
    for _, row in pd.concat([top[top.baseline].head(1), found]).iterrows():
        if not row["baseline"] and (timed >= max(k, must) or (fits and timed >= must)):
            break
        key = str(int(row["number"]))
        if key not in done:
            measured = MeasuredLatencyProfiler(lut, times=3).profile(trial_arch(ctx, row))
            done = merge_json(path, {key: {"predicted_ms": float(row["latency_ms"]), "measured_ms": round(measured, 4),
                                           "fits": measured <= limit, "baseline": bool(row["baseline"]),
                                           "build": build}})
        if not row["baseline"]:
            timed += 1
            fits = fits or done[key]["fits"]
    if not fits:
        print(f"none of the {timed} best found networks measured within {limit:g} ms here; they are "
              "kept, ranked below any that fit: see latency_check.json", file=sys.stderr, flush=True)
    return done
