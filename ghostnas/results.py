"""Tables, Pareto front, plots and a summary from a study's run folder.

Everything is read back from the study journal, so any engine's trials and any number of
cooperating workers give the same files:

- ``trials.csv`` / ``trials.parquet``: one row per evaluated trial (samples rejected outside the
  budget are only counted): number, state, val_acc, macs, params, latency_ms, seconds, baseline,
  protocol, engine, error, then the flat arch labels (``width``, ``s6_b3_exp``, ...).
- ``pareto.csv``: trials not beaten on both accuracy and cost.
- ``summary.json``: counts, best trial, the hand-designed baseline, the margin between them;
  with a latency budget, the best networks' latency measured here (``latency_check.json``, see
  ``search.runner.check_latency``): a network measured over the budget ranks below all others.
- ``acc_vs_macs.png`` (and ``acc_vs_latency.png`` with a LUT), paper networks marked.

Open the study in optuna-dashboard:
``optuna-dashboard results/runs/<study>/study.journal`` (``pip install optuna-dashboard``; it
serves on 127.0.0.1 by default).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import GhostNASError
from .io import atomic_write, atomic_write_text, sigint_held

# trial-table columns that are not arch labels (val_acc_mean, latency_ms_measured, latency_fits:
# added from confirm.json and latency_check.json)
META = ["number", "state", "val_acc", "macs", "params", "latency_ms", "seconds", "baseline",
        "prefilter", "protocol", "evaluator", "engine", "worker", "node", "error", "history", "val_acc_mean",
        "latency_ms_measured", "latency_fits"]


# what Optuna raises replaying a journal with a bad record (a glued or hand-edited line, an unknown op)
JOURNAL_ERRORS = (ValueError, AssertionError, KeyError, TypeError, IndexError)


def corrupt_journal(journal: Path, exc: BaseException) -> GhostNASError:
    return GhostNASError(f"{journal}: a record cannot be read ({type(exc).__name__}: {str(exc)[:120]}); "
                         "the journal was edited or damaged: restore it from a copy, or start a new --study")


def repair_torn_tail(journal: Path) -> bool:
    """A writer killed mid-append leaves a last line without its newline. Optuna reads past it, but
    the next append would glue a record onto it and leave the journal unreadable for good. Under
    the journal's own lock, the torn bytes are moved to ``study.journal.torn`` and the file is cut
    back to its last whole line. Returns whether anything was cut."""
    from optuna.storages.journal import JournalFileSymlinkLock
    from optuna.storages.journal._file import get_lock_file

    if not journal.exists() or journal.stat().st_size == 0:
        return False
    with get_lock_file(JournalFileSymlinkLock(str(journal))):
        data = journal.read_bytes()
        if data.endswith(b"\n"):
            return False
        cut = data.rfind(b"\n") + 1
        with open(journal.with_name(journal.name + ".torn"), "ab") as fh:
            fh.write(data[cut:] + b"\n")
        with open(journal, "r+b") as fh:
            fh.truncate(cut)
            os.fsync(fh.fileno())
    return True


def journal_storage(journal: Path, repair: bool = False):
    """The study's Optuna journal storage; with ``repair`` (before appending) a torn tail is cut."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if repair and repair_torn_tail(journal):
        import sys

        print(f"note: {journal}: its last record was torn (a writer was killed mid-write); set aside in "
              f"{journal.name}.torn", file=sys.stderr)
    try:
        return JournalStorage(JournalFileBackend(str(journal)))
    except JOURNAL_ERRORS as exc:
        raise corrupt_journal(journal, exc) from None


def load_study(run_dir: "str | os.PathLike[str]"):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_dir = Path(run_dir)
    journal = run_dir / "study.journal"
    if not journal.exists():
        raise GhostNASError(f"{run_dir}: no study.journal here; run `ghostnas search` first or "
                            "pass --study NAME / --runs DIR")
    storage = journal_storage(journal)
    try:
        names = optuna.get_all_study_names(storage)
        if not names:
            raise GhostNASError(f"{journal}: holds no study")
        study = optuna.load_study(study_name=names[0], storage=storage)
        study.get_trials(deepcopy=False)
    except JOURNAL_ERRORS as exc:
        raise corrupt_journal(journal, exc) from None
    return study


def _state(t) -> str:
    name = t.state.name.lower()
    if name == "pruned" and t.user_attrs.get("rejected"):
        return "rejected"
    if name == "fail" and t.user_attrs.get("lost"):
        return "lost"
    return {"complete": "complete", "pruned": "pruned", "fail": "failed"}.get(name, name)


def trials_frame(study, include_rejected: bool = False) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        state = _state(t)
        if state == "waiting" or (state == "rejected" and not include_rejected):
            continue
        row: dict[str, Any] = {"number": t.number, "state": state}
        attrs = dict(t.user_attrs)
        row["val_acc"] = attrs.pop("val_acc", None)
        if t.values and state == "complete":
            row["val_acc"] = t.values[0]
        for key in META[3:]:
            if key in attrs:
                row[key] = attrs.pop(key)
        row["baseline"] = bool(row.get("baseline", False))
        if "history" in row:
            row["history"] = json.dumps(row["history"])
        row.update(t.params)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=META)
    front = [c for c in META if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


def pareto_front(df: pd.DataFrame, cost: str = "macs") -> pd.DataFrame:
    done = df[df.state == "complete"].dropna(subset=["val_acc", cost]).sort_values([cost, "val_acc"],
                                                                                  ascending=[True, False])
    keep, best = [], -1.0
    for idx, row in done.iterrows():
        if row.val_acc > best:
            keep.append(idx)
            best = row.val_acc
    return done.loc[keep]


def _brief(row: pd.Series, label_cols: list[str]) -> dict[str, Any]:
    out = {"trial": int(row["number"]), "val_acc": float(row["val_acc"]), "macs": int(row["macs"]),
           "params": int(row["params"]), "baseline": bool(row.get("baseline", False)),
           "arch": {c: _plain(row[c]) for c in label_cols if pd.notna(row[c])}}
    if "latency_ms" in row and pd.notna(row["latency_ms"]):
        out["latency_ms"] = float(row["latency_ms"])
    attn = [c for c in label_cols if c.endswith("_attn") and pd.notna(row[c])]
    if attn:  # a space with GhostNetV2's choice: where the search put DFC attention
        out["dfc_blocks"] = [c[: -len("_attn")] for c in attn if row[c] == "dfc"]
    if "val_acc_mean" in row and pd.notna(row["val_acc_mean"]):
        out["val_acc_mean"] = float(row["val_acc_mean"])
    if "latency_ms_measured" in row and pd.notna(row["latency_ms_measured"]):
        out.update(latency_ms_measured=float(row["latency_ms_measured"]), latency_fits=bool(row["latency_fits"]))
    return out


def trial_arch(space, row: pd.Series, name: str):
    """The Arch of one row of a trials table (its label columns) in ``space``."""
    labels = {c: _plain(row[c]) for c in dict(space.dimensions()) if c in row and pd.notna(row[c])}
    return space.to_arch(labels, name=name)


def _plain(v: Any) -> Any:
    """numpy scalar -> Python scalar, for JSON."""
    return v.item() if hasattr(v, "item") else v


def rank_trials(run_dir: "str | os.PathLike[str]", df: pd.DataFrame) -> pd.DataFrame:
    """The one ranking of a study's complete trials, used by ``summary.json``, `results show`,
    `export best`, the kept weights and `--confirm`'s choice of finalists:

    1. after ``--confirm``, the confirmed finalists first, by their mean over seeds (column
       ``val_acc_mean``), since one proxy run is partly seed luck;
    2. then every other trial by its score, fewer MACs first on a tie;
    3. a network that `search` timed over a latency budget (``latency_check.json``) last.
    """
    top = df[df.state == "complete"].sort_values(["val_acc", "macs"], ascending=[False, True])
    entries = _confirm_entries(Path(run_dir))
    if entries:
        top = top.assign(val_acc_mean=top.number.map({n: e["val_acc_mean"] for n, e in entries.items()}))
        top = pd.concat([top[top.val_acc_mean.notna()].sort_values("val_acc_mean", ascending=False),
                         top[top.val_acc_mean.isna()]])
    return with_latency_checks(run_dir, top)


def with_latency_checks(run_dir: Path, top: pd.DataFrame) -> pd.DataFrame:
    """``top`` with the latencies measured by `search` (``latency_check.json``) as columns
    ``latency_ms_measured`` and ``latency_fits``; a network measured over the budget moves below
    every other, the order otherwise kept."""
    path = Path(run_dir) / "latency_check.json"
    if not path.exists():
        return top
    checks = {int(k): e for k, e in json.loads(path.read_text()).items()}
    top = top.assign(latency_ms_measured=top.number.map({n: e["measured_ms"] for n, e in checks.items()}),
                     latency_fits=top.number.map({n: e["fits"] for n, e in checks.items()}))
    over = top.latency_fits.eq(False)
    return pd.concat([top[~over], top[over]])


def summarize(run_dir: Path, study, df: pd.DataFrame, rejected: int) -> dict[str, Any]:
    config = {}
    if (run_dir / "config.json").exists():
        config = json.loads((run_dir / "config.json").read_text())
    label_cols = [c for c in df.columns if c not in META]
    counts = df.state.value_counts().to_dict() if not df.empty else {}
    counts["rejected_over_budget"] = rejected  # or under a range's floor; the key predates ranges
    summary: dict[str, Any] = {"study": study.study_name, "run_dir": str(run_dir),
                               "budgets": config.get("identity", {}).get("budgets"),
                               "protocol": config.get("protocol"), "trials": counts,
                               "evaluator": "supernet" if config.get("identity", {}).get("supernet") else "proxy"}
    top = rank_trials(run_dir, df)
    if not top.empty:
        summary["best"] = _brief(top.iloc[0], label_cols)
        found = top[~top.baseline]
        if not found.empty:
            summary["best_found"] = _brief(found.iloc[0], label_cols)
        base = top[top.baseline]
        if not base.empty:
            summary["baseline"] = _brief(base.iloc[0], label_cols)
            if "best_found" in summary:
                summary["found_minus_baseline_points"] = round(
                    100 * (summary["best_found"]["val_acc"] - summary["baseline"]["val_acc"]), 2)
    confirmed = _confirmed(run_dir, top, label_cols)
    if confirmed:
        summary["confirmed"] = confirmed
    if "seconds" in df:
        summary["train_seconds_total"] = round(float(df.seconds.fillna(0).sum()), 1)
    return summary


def _confirm_entries(run_dir: Path) -> dict[int, dict[str, Any]]:
    """``confirm.json`` (written by `search --confirm`) by trial number, each with its mean."""
    path = run_dir / "confirm.json"
    if not path.exists():
        return {}
    entries = {}
    for key, entry in json.loads(path.read_text()).items():
        accs = list(entry["val_accs"].values())
        entries[int(key)] = {"val_accs": entry["val_accs"], "val_acc_mean": round(sum(accs) / len(accs), 4),
                             "protocol": (entry.get("protocol") or {}).get("name")}  # None: the trials'
    return entries


def _confirmed(run_dir: Path, top: pd.DataFrame, label_cols: list[str]) -> dict[str, Any]:
    """`--confirm`: the finalists' accuracy as a mean over seeds, and the best found by that mean."""
    finalists = []
    entries = _confirm_entries(run_dir)
    for number, entry in entries.items():
        row = top[top.number == number]
        if row.empty:
            continue
        brief = _brief(row.iloc[0], label_cols)
        brief.update(val_acc_mean=entry["val_acc_mean"], val_accs=entry["val_accs"])
        finalists.append(brief)
    if not finalists:
        return {}
    protocols = {e["protocol"] for e in entries.values()} - {None}
    out: dict[str, Any] = {"seeds_per_network": max(len(f["val_accs"]) for f in finalists),
                           "protocol": protocols.pop() if protocols else "the trials'",
                           "finalists": sorted(finalists, key=lambda f: (f.get("latency_fits") is False,
                                                                         -f["val_acc_mean"]))}
    found = [f for f in out["finalists"] if not f["baseline"]]
    base = [f for f in out["finalists"] if f["baseline"]]
    if found:
        out["best_found"] = found[0]
    if found and base:
        out["found_minus_baseline_points"] = round(100 * (found[0]["val_acc_mean"] - base[0]["val_acc_mean"]), 2)
        se = se_of_difference(list(found[0]["val_accs"].values()), list(base[0]["val_accs"].values()))
        if se is not None:
            out["found_minus_baseline_se_points"] = round(100 * se, 2)
    return out


def se_of_difference(a: list[float], b: list[float]) -> float | None:
    """Standard error of the difference between the means of two sets of seed runs (None with
    fewer than two runs on a side): how far apart two networks' means can fall by seed luck."""
    import statistics

    if min(len(a), len(b)) < 2:
        return None
    return (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5


def plot(df: pd.DataFrame, path: Path, cost: str, budgets: list[str] | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .arch import registered_names
    from .cost import count
    from .cost.profiler import PROFILERS

    scale, unit = PROFILERS[cost].scale, PROFILERS[cost].axis  # the axis is the profiler's
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    done = df[df.state == "complete"]
    pruned = df[(df.state == "pruned") & df.val_acc.notna()]
    if not pruned.empty:
        ax.scatter(pruned[cost] / scale, pruned.val_acc, c="lightgrey", s=18, label="pruned (partial)")
    found = done[~done.baseline]
    ax.scatter(found[cost] / scale, found.val_acc, c="tab:blue", s=24, label="searched")
    base = done[done.baseline]
    if not base.empty:
        ax.scatter(base[cost] / scale, base.val_acc, marker="*", c="tab:red", s=160, label="paper (baseline)")
    front = pareto_front(df, cost)
    if len(front) > 1:
        ax.plot(front[cost] / scale, front.val_acc, c="tab:blue", lw=1, alpha=0.6, label="Pareto front")
    if cost == "macs":
        for name in registered_names():
            x = count(name).macs / 1e6
            ax.axvline(x, c="tab:red", ls=":", lw=0.8)
            ax.text(x, ax.get_ylim()[0], f" {name}", rotation=90, va="bottom", fontsize=7, color="tab:red")
    ax.set_xlabel(unit)
    ax.set_ylabel("proxy val top-1")
    ax.set_title(f"{path.parent.name}: accuracy vs {'MACs' if cost == 'macs' else 'latency'}"
                 + (f" (budget {', '.join(budgets)})" if budgets else ""), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def write_results(run_dir: "str | os.PathLike[str]", plots: bool = True) -> dict[str, Any]:
    with sigint_held():  # a Ctrl-C waits for the files: each is whole and they agree
        return _write_results(Path(run_dir), plots)


def summary_of(run_dir: "str | os.PathLike[str]") -> dict[str, Any]:
    """The summary of a study as ``summary.json`` would hold it, writing nothing."""
    run_dir = Path(run_dir)
    study = load_study(run_dir)
    rejected = sum(1 for t in study.get_trials(deepcopy=False) if _state(t) == "rejected")
    return summarize(run_dir, study, trials_frame(study), rejected)


def ranked_arch(run_dir: Path, rank: int = 1):
    """(Arch, kept weights path or None, trial row) of the ``rank``-th trial of the one ranking."""
    from .space import load_space, space_from_dict

    df = rank_trials(run_dir, trials_frame(load_study(run_dir)))
    if not 1 <= rank <= len(df):
        raise GhostNASError(f"study {run_dir.name} has {len(df)} complete trials; --rank must be 1..{len(df)}")
    row = df.iloc[rank - 1]
    try:
        config = json.loads((run_dir / "config.json").read_text())
        # the space as the study recorded it; studies from before that name it
        space = space_from_dict(config["space"]) if "space" in config else load_space(config["identity"]["space"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GhostNASError(f"{run_dir / 'config.json'}: unreadable ({exc}); the study's space is unknown") from None
    arch = trial_arch(space, row, name=f"{run_dir.name}-trial{int(row['number'])}")
    weights = run_dir / "weights" / f"trial_{int(row['number'])}.pt"
    return arch, (weights if weights.exists() else None), row


def _write_results(run_dir: Path, plots: bool) -> dict[str, Any]:
    study = load_study(run_dir)
    df = trials_frame(study)
    rejected = sum(1 for t in study.get_trials(deepcopy=False) if _state(t) == "rejected")
    atomic_write(run_dir / "trials.csv", lambda tmp: df.to_csv(tmp, index=False))
    try:
        atomic_write(run_dir / "trials.parquet", lambda tmp: df.to_parquet(tmp, index=False))
    except ImportError:  # pyarrow missing: CSV is the record
        pass
    cost = "latency_ms" if "latency_ms" in df and df.latency_ms.notna().any() else "macs"
    if not df.empty:
        atomic_write(run_dir / "pareto.csv", lambda tmp: pareto_front(df, cost).to_csv(tmp, index=False))
    summary = summarize(run_dir, study, df, rejected)
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    if plots and not df[df.state == "complete"].empty:
        plot(df, run_dir / "acc_vs_macs.png", "macs", summary.get("budgets"))
        if cost == "latency_ms":
            plot(df, run_dir / "acc_vs_latency.png", "latency_ms", summary.get("budgets"))
    return summary


def find_run(study: str | None, out: str = "results/runs") -> Path:
    """The run folder of ``study``, or the most recently updated one under ``out``."""
    root = Path(out)
    if study:
        path = root / study
        if not (path / "study.journal").exists():
            known = sorted(p.parent.name for p in root.glob("*/study.journal"))
            raise GhostNASError(f"no study {study!r} under {root}; known: {known or 'none'}")
        return path
    runs = sorted(root.glob("*/study.journal"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise GhostNASError(f"no studies under {root}; run `ghostnas search --budget 150MFLOPs` first")
    return runs[-1].parent
