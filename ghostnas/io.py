"""Atomic file writes: write a temp file beside the target, fsync, rename. A crash leaves either
the old file or the new one, never half of one. Work shared by several processes through claims
(``work_claim``, ``run_units``), and Ctrl-C handling for long jobs (below)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from .errors import GhostNASError


def make_dir(path: "str | os.PathLike[str]", what: str = "output folder") -> Path:
    """``mkdir -p``, with a path that is a file or cannot be written said in one line."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise GhostNASError(f"{what} {folder} is a file; give a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GhostNASError(f"{what} {folder}: cannot create it ({exc.strerror or exc})") from None
    return folder


def atomic_write(path: "str | os.PathLike[str]", write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``path`` atomically."""
    target = Path(path)
    if target.is_dir():
        raise GhostNASError(f"{target} is a folder; give a file name")
    make_dir(target.parent, "folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise GhostNASError(f"{target}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; results should read like any file
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return target


def atomic_write_text(path: "str | os.PathLike[str]", text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text))


def _locked(path: Path):
    """An exclusive lock on ``path``'s sibling ``.lock`` file (released when the handle closes)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = open(path.with_suffix(".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def merge_json(path: "str | os.PathLike[str]", updates: dict) -> dict:
    """Add ``updates`` to the JSON object at ``path`` under the same lock as ``merge_csv_row``
    (several processes caching results in one file); returns the merged object."""
    import json

    target = Path(path)
    with _locked(target):
        data = json.loads(target.read_text()) if target.exists() else {}
        data.update(updates)
        atomic_write_text(target, json.dumps(data, indent=1) + "\n")
    return data


def merge_csv_row(path: "str | os.PathLike[str]", row: dict, key: tuple[str, ...], *,
                  update: bool = False) -> list[dict]:
    """Add ``row`` to the CSV at ``path``, replacing any row with the same values in the ``key``
    columns (``update``: only the columns ``row`` has, keeping the old row's others), under an
    exclusive lock beside the file, so several processes (benchmark shards) can add rows to one
    table without losing each other's. Returns all rows now in the file (values read back are
    strings)."""
    import csv

    target = Path(path)
    with _locked(target):
        rows: list[dict] = []
        if target.exists():
            with open(target, newline="") as fh:
                rows = list(csv.DictReader(fh))
        same = [r for r in rows if all(r.get(k) == str(row[k]) for k in key)]
        rows = [r for r in rows if not any(r is s for s in same)]
        if update and same:
            row = {**same[-1], **row}
        rows.append(row)
        fields = list(dict.fromkeys(k for r in rows for k in r))

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)

        atomic_write(target, write)
    return rows


@contextlib.contextmanager
def work_claim(path: "str | os.PathLike[str]", item: str) -> Iterator[bool]:
    """Claim ``item`` among the processes adding rows to the results file ``path``: yields True
    when this process now holds it (released on exit, also on an error), False when another live
    process does. Any number of processes running the same benchmark thus share its work without
    a fixed split, and one that finishes early takes what is left. Claims are kept in
    ``<path stem>.claims.json`` under the lock of ``merge_csv_row``; a claim whose process has
    died (same host) is taken over, so a killed worker's item is picked up, and a checkpointed
    run resumes where it stopped. Write the item's result before leaving the block: another
    process may claim it as soon as it is released."""
    import json
    import socket

    target = Path(path)
    claims_path = _claims_path(target)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid())}

    def is_me(holder) -> bool:  # the claim also records when it was made ("since")
        return isinstance(holder, dict) and all(holder.get(k) == v for k, v in me.items())

    with _locked(target):
        claims = _read_claims(claims_path)
        holder = claims.get(item)
        if holder is not None and not is_me(holder) and _alive(holder):
            mine = False
        else:
            claims[item] = {**me, "since": time.time()}
            atomic_write_text(claims_path, json.dumps(claims, indent=1) + "\n")
            mine = True
    try:
        yield mine
    finally:
        if mine:
            with _locked(target):
                claims = _read_claims(claims_path)
                if is_me(claims.get(item)):
                    del claims[item]
                    atomic_write_text(claims_path, json.dumps(claims, indent=1) + "\n")


def live_claims(path: "str | os.PathLike[str]") -> dict[str, dict]:
    """The items ``work_claim`` processes hold now (dead holders left out): item -> its claim
    (``pid``, ``host``, ``since`` as Unix time where recorded). Reads only; for progress reports."""
    claims = _read_claims(_claims_path(Path(path)))
    return {item: holder for item, holder in claims.items() if _alive(holder)}  # a garbled claim is not alive


def _claims_path(target: Path) -> Path:
    return target.with_name(target.stem + ".claims.json")


def _read_claims(claims_path: Path) -> dict:
    import json

    try:
        claims = json.loads(claims_path.read_text())
    except (OSError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _always() -> bool:
    return True


def _never() -> bool:
    return False


@dataclasses.dataclass
class WorkUnit:
    """A piece of a benchmark's work that processes share by claims: its claim key, whether it is
    done (by any process), how to do it, whether what it needs is there yet, and (for a report of
    progress) whether it counts as done only because it turned out not to be needed."""
    key: str
    done: Callable[[], bool]
    run: Callable[[], object]
    ready: Callable[[], bool] = _always
    skipped: Callable[[], bool] = _never


def run_units(units: "list[WorkUnit]", path: "str | os.PathLike[str]", *, wait: bool = True,
              max_wait_s: float = 30.0) -> None:
    """Do every unit not done yet, in order, skipping those another live process holds (claims
    beside ``path``, as ``work_claim``) or whose inputs are not there yet. With ``wait`` return
    once all are done, by this process or the others (so the caller can build its table);
    without, return as soon as nothing is left that this process could take."""
    pause = 0.5
    while True:
        ran = pending = False
        for u in units:
            if u.done():
                continue
            pending = True
            if not u.ready():
                continue
            with work_claim(path, u.key) as mine:
                if mine and not u.done():  # done meanwhile: another process did it
                    u.run()
                    ran = True
        if not pending:
            return
        if not ran and not wait:
            return
        # the rest is held by other processes, or waits on theirs: look again soon, then less often
        pause = 0.5 if ran else min(2 * pause, max_wait_s)
        if not ran:
            time.sleep(pause)


def _alive(holder: dict) -> bool:
    """Whether a claim's process still runs; one on another host is taken as running. A process
    that reuses a dead holder's pid is told apart by its start time (where /proc has it)."""
    import socket

    if not isinstance(holder, dict):  # a garbled claim
        return False
    if holder.get("host") != socket.gethostname():
        return True
    try:
        pid = int(holder["pid"])
        os.kill(pid, 0)
    except PermissionError:  # alive, another user's
        return True
    except (ProcessLookupError, KeyError, ValueError, TypeError, OverflowError):  # gone, or a garbled claim
        return False
    started = holder.get("started")
    return started is None or started == _start_time(pid)


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None

# ---- Ctrl-C ---------------------------------------------------------------------------------
# A library interrupted mid-call does not always let KeyboardInterrupt through: matplotlib's
# savefig raised ValueError in about 1 of 150 interrupted calls here, and an interrupt landing in
# a weakref callback is printed and dropped. So a search records that SIGINT arrived
# (``sigint_seen``, ``sigint_as_interrupt``), and holds it over stretches that must finish whole
# (``sigint_held``).

_sigint = {"seen": False, "held": 0, "pending": False}


def _on_sigint(signum, frame) -> None:
    _sigint["seen"] = True
    if _sigint["held"]:
        _sigint["pending"] = True
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_watch() -> Iterator[None]:
    """For a long job's duration: Ctrl-C raises KeyboardInterrupt as usual and is remembered, so
    an error a library made of it can be told apart from a real one (``sigint_seen``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    _sigint.update(seen=False, pending=False)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def sigint_seen() -> bool:
    """Whether Ctrl-C arrived since ``sigint_watch`` began."""
    return _sigint["seen"]


@contextlib.contextmanager
def sigint_as_interrupt() -> Iterator[None]:
    """Within: an error raised after Ctrl-C arrived surfaces as the KeyboardInterrupt it was
    (a library interrupted mid-call can raise its own error instead)."""
    try:
        yield
    except Exception as exc:
        if sigint_seen():
            raise KeyboardInterrupt from exc
        raise


@contextlib.contextmanager
def sigint_held() -> Iterator[None]:
    """Within ``sigint_watch``: a Ctrl-C waits until the block is done, then raises
    KeyboardInterrupt (result files and journal records are finished whole). Elsewhere: no effect."""
    _sigint["held"] += 1
    try:
        yield
    finally:
        _sigint["held"] -= 1
        if not _sigint["held"] and _sigint["pending"]:
            _sigint["pending"] = False
            raise KeyboardInterrupt
