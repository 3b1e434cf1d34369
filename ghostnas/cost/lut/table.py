"""A latency table: measured entries (CSV) + metadata (JSON), the predictor for entries it lacks,
and the end-to-end calibration; ``LatencyModel.predict_arch(arch) -> ms``.

No pickles: the predictor (gradient-boosted trees for entries the table lacks) is refitted from
the CSV when needed, and its predictions for every entry of the table's space are kept beside the
table (``FILE.predicted.csv.gz``, keyed by a digest of what the fit depends on) so that later
loads skip the fit (~35 s for the sampled default table). Network latency = a * (sum of entries)
+ b, where a and b are fitted on end-to-end measurements of random networks timed at build time.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

from ...arch import Arch, load_arch
from ...errors import GhostNASError
from .keys import COLUMNS, Entry, FEATURES, arch_entries, predictor_features
from .timing import allocator_mismatch, backend_installed, backend_version, measure_arch


LUT_FORMAT = "ghostnas.lut/1"
# Gradient-boosted trees on log(ms) for entries a table did not measure. Against the complete
# default-space table (benchmarks/lut_predictor.py), trained on 4,000 sampled entries: 800 trees of
# depth 4 put 100% of networks' sums within 10% (MAPE 2.3%) vs 98% (2.9%) for 300 of depth 3,
# at about 3x the fit time (~15-30 s, once per process, only for a table that is not complete).
PREDICTOR = {"n_estimators": 800, "max_depth": 4, "learning_rate": 0.05}
PREDICTED_FORMAT = "ghostnas.lut-predicted/1"

class LatencyModel:
    """A LUT plus its predictor and calibration; ``predict_arch(arch) -> ms``."""

    def __init__(self, rows: dict[str, dict[str, float]], meta: dict[str, Any], path: Path | None = None,
                 predictor: dict[str, Any] | None = None):
        self.rows = rows
        self.predictor = predictor or PREDICTOR  # tree settings, for entries the table lacks
        self.meta = meta
        self.path = path
        self._model = None
        self._predicted: dict[str, float] = {}  # the search asks for the same entries again and again
        self._cache_read = False
        self.overhead = float(meta.get("overhead_ms", 0.0))
        self._ab: tuple[float, float] | None = None

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "LatencyModel":
        path = Path(path)
        meta_path = Path(str(path) + ".meta.json")
        if not path.exists() or not meta_path.exists():
            raise GhostNASError(f"latency table {path} (and {meta_path.name}) not found; build one "
                                "with `ghostnas lut build --space tiny --out FILE`")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise GhostNASError(f"{meta_path}: corrupt metadata ({exc}); rebuild the LUT") from None
        if not isinstance(meta, dict):
            raise GhostNASError(f"{meta_path}: holds a JSON {type(meta).__name__}, not the table's metadata "
                                "object; rebuild the LUT")
        if meta.get("format") != LUT_FORMAT:
            raise GhostNASError(f"{meta_path}: not a ghostnas LUT (format {meta.get('format')!r})")
        problem = _meta_problem(meta)
        if problem:
            raise GhostNASError(f"{meta_path}: {problem}; rebuild the LUT or restore its metadata")
        return cls(read_rows(path), meta, path)

    def _fit(self):
        if self._model is None:
            if len(self.rows) < 8:
                raise GhostNASError(f"{self.path}: too few entries ({len(self.rows)}) to predict "
                                    "missing ones; measure more with `ghostnas lut build`")
            from sklearn.ensemble import GradientBoostingRegressor

            x = [predictor_features(Entry.from_key(key)) for key in self.rows]
            y = [math.log(max(r["median_ms"], 1e-6)) for r in self.rows.values()]
            self._model = GradientBoostingRegressor(**self.predictor, random_state=0).fit(x, y)
        return self._model

    def predict_missing(self, entries: list[Entry]) -> None:
        """Predict the entries the table lacks in one batch (one tree walk per batch, not per entry);
        from the prediction cache when it matches the table, else by fitting (and then caching
        every entry of the space, so the next process need not fit)."""
        todo = self._unpredicted(entries)
        cached = {}
        if todo and not self._cache_read:
            self._cache_read = True
            cached = self._read_cache()
            self._predicted.update(cached)
            todo = self._unpredicted(todo)
        if todo:
            fresh = self._model is None
            self._predict(todo)
            if fresh and not cached:
                self._write_cache()

    def _unpredicted(self, entries: list[Entry]) -> list[Entry]:
        return list({e.key: e for e in entries if e.key not in self.rows and e.key not in self._predicted}.values())

    def _predict(self, entries: list[Entry]) -> None:
        if not entries:
            return
        for e, y in zip(entries, self._fit().predict([predictor_features(e) for e in entries])):
            # to the cache's precision, so a process that fitted and one that read the cache agree
            self._predicted[e.key] = float(f"{math.exp(y):.6g}")

    def _cache_path(self) -> Path | None:
        return Path(str(self.path) + ".predicted.csv.gz") if self.path is not None else None

    def _fit_digest(self) -> str:
        """What the fitted trees depend on: the rows in order (keys and medians), the tree settings
        and the features the keys give today (so a change to ``predictor_features`` invalidates
        old caches by itself). The scikit-learn version is left out: another version's trees
        predict the same to far below the table's own noise, and shipped caches stay usable."""
        h = hashlib.sha256(json.dumps(self.predictor, sort_keys=True).encode())
        for i, (key, row) in enumerate(self.rows.items()):
            h.update(f"{key}={row['median_ms']!r};".encode())
            if i < 64:
                h.update(repr(predictor_features(Entry.from_key(key))).encode())
        return h.hexdigest()[:16]

    def _read_cache(self) -> dict[str, float]:
        path = self._cache_path()
        if path is None or not path.exists():
            return {}
        try:
            with gzip.open(path, "rt", newline="") as fh:
                if fh.readline().split() != ["#", PREDICTED_FORMAT, self._fit_digest()]:
                    return {}  # another table state or predictor: refit (and rewrite)
                return {key: float(ms) for key, ms in csv.reader(fh)}
        except (OSError, EOFError, ValueError, csv.Error):
            return {}  # a damaged cache costs a refit, never a wrong number

    def _write_cache(self) -> None:
        """Predict every entry of the table's space the table lacks and keep them beside it
        (best effort: a table whose space cannot be found, or a folder not writable, goes uncached)."""
        from ...io import atomic_write
        from .keys import space_entries

        path = self._cache_path()
        if path is None:
            return
        try:
            space = self.space()
        except GhostNASError:
            return
        self._predict(self._unpredicted(space_entries(space)))
        text = io.StringIO()
        text.write(f"# {PREDICTED_FORMAT} {self._fit_digest()}\n")
        writer = csv.writer(text, lineterminator="\n")
        for key, ms in sorted(self._predicted.items()):
            writer.writerow([key, f"{ms:.6g}"])

        def write(tmp: Path) -> None:
            with gzip.GzipFile(tmp, "wb", mtime=0) as fh:  # mtime 0: the same predictions give the same bytes
                fh.write(text.getvalue().encode())

        try:
            atomic_write(path, write)
        except (OSError, GhostNASError):
            pass

    def entry_ms(self, entry: Entry) -> tuple[float, bool]:
        """(ms, measured?) for one entry: the table's median, or the predictor's estimate."""
        row = self.rows.get(entry.key)
        if row is not None:
            raw, measured = row["median_ms"], True
        else:
            self.predict_missing([entry])
            raw, measured = self._predicted[entry.key], False
        # each entry was timed as its own model: take off the runtime's fixed per-call cost
        return max(raw - self.overhead, 0.01 * raw), measured

    def predict_sum(self, arch: "Arch | str") -> float:
        entries = arch_entries(load_arch(arch).resolve())
        self.predict_missing(entries)
        return sum(self.entry_ms(e)[0] for e in entries)

    def predict_arch(self, arch: "Arch | str") -> float:
        a, b = self.calibration()
        return a * self.predict_sum(arch) + b

    def measure_arch(self, arch: "Arch | str", times: int = 1) -> float:
        """Time ``arch`` end to end here as the table's entries were timed (backend, threads,
        clock, reference), so measured and predicted are like with like; with ``times`` > 1, the
        median of that many separate timings (one timing varies ~3% on a busy machine)."""
        ref_ms = (self.meta.get("reference") or {}).get("ms")
        return measure_arch(load_arch(arch), self.meta["backend"], int(self.meta["threads"]),
                            clock=self.meta.get("clock", "wall"), reference_ms=ref_ms, times=times)

    def why_not_timeable_here(self) -> str | None:
        """Why ``measure_arch`` here would not be like with like with the table, or None when it
        is: the table must have been built on this kind of machine (CPU model, cores,
        architecture; a table imported from a phone is not), with its backend installed here and
        timed with this process's allocator."""
        from ...machine import cpu_model

        device = self.meta.get("device") or {}
        if self.meta.get("imported_from"):
            return f"{self.path} was measured on another device ({device.get('cpu')})"
        here = {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine()}
        for key, value in here.items():
            if device.get(key) != value:
                return f"{self.path} was built on another machine ({key} {device.get(key)!r}, here {value!r})"
        backend = self.meta["backend"]
        if not backend_installed(backend):
            return f"its backend {backend!r} is not installed here"
        return allocator_mismatch(self.meta, backend, self.path)

    def space(self):
        """The space the table was built for: the shipped space of its name (or, for a table
        built from a user's YAML, that file where it still is), checked against the recorded
        content hash."""
        from ...space import load_space

        source = self.meta.get("space")
        space = load_space(source if source and Path(source).exists() else self.meta.get("space_name", source))
        self.require_space(space)
        return space

    def require_space(self, space) -> None:
        """Refuse to predict for a space the table was not built for: its entries would be other
        layers (another resolution, other channels), and predictions silently wrong."""
        built_for = self.meta.get("space_name") or Path(str(self.meta.get("space"))).stem
        digest = self.meta.get("space_hash")
        if (digest and digest != space.digest()) or (not digest and built_for != space.name):
            raise GhostNASError(f"{self.path} was built for space {built_for!r}"
                                + (f" (content {digest})" if digest else "")
                                + f", not {space.name!r} (content {space.digest()}); build a table for this "
                                f"space: ghostnas lut build --space {space.source or space.name} --out FILE")

    def foreign_device(self) -> str | None:
        """One line when the table was timed on another kind of device than this machine (CPU model,
        architecture, backend version): its numbers may not hold here."""
        from ...machine import cpu_model

        device = self.meta.get("device") or {}
        here = {"cpu": cpu_model(), "machine": platform.machine()}
        differs = [f"{key} {device.get(key)!r} (here {value!r})" for key, value in here.items()
                   if device.get(key) and device.get(key) != value]
        built_with = self.meta.get("backend_version")
        if not self.meta.get("imported_from") and backend_installed(self.meta["backend"]):
            now = backend_version(self.meta["backend"])
            if built_with and now != built_with:
                differs.append(f"{self.meta['backend']} {built_with} (here {now})")
        if not differs:
            return None
        return (f"note: {self.path} was timed on another device: {'; '.join(differs)}; its latencies are that "
                "device's, not this machine's (build one here with `ghostnas lut build`, or import one "
                "measured on your target with `ghostnas lut import`)")

    def calibration(self) -> tuple[float, float]:
        """(a, b) of whole = a * sum + b: refitted from the calibration networks' entry keys and
        measured times when the metadata has them (so it always matches this predictor), else
        the stored pair."""
        if self._ab is None:
            cal = self.meta.get("calibration") or {}
            if cal.get("networks"):
                fit = fit_calibration(self, cal["networks"])
                self._ab = fit["a"], fit["b"]
            else:
                self._ab = float(cal.get("a", 1.0)), float(cal.get("b", 0.0))
        return self._ab


def _number(v: Any, low: float = 0.0) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= low


def _meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with a table's metadata (each field the predictions or timings read), or None."""
    from .timing import BACKEND_MODULES

    checks = [
        ("backend", isinstance(meta.get("backend"), str) and (meta["backend"] in BACKEND_MODULES
                                                             or bool(meta.get("imported_from"))),
         f"one of {sorted(BACKEND_MODULES)}"),
        ("threads", isinstance(meta.get("threads"), int) and not isinstance(meta.get("threads"), bool)
         and meta.get("threads") >= 1, "a positive integer"),
        ("overhead_ms", "overhead_ms" not in meta or _number(meta["overhead_ms"]), "a number >= 0"),
        ("clock", isinstance(meta.get("clock", "wall"), str) and meta.get("clock", "wall") in ("wall", "cpu"),
         "wall or cpu"),
        ("device", isinstance(meta.get("device", {}), dict), "an object"),
        ("space_name", isinstance(meta.get("space_name", meta.get("space")), str), "a space name"),
        ("space_hash", meta.get("space_hash") is None or isinstance(meta.get("space_hash"), str), "a hash string"),
        ("reference", meta.get("reference") is None or (isinstance(meta["reference"], dict)
                                                         and _number(meta["reference"].get("ms"), 1e-9)),
         "null or an object with ms > 0"),
        ("calibration", _calibration_ok(meta.get("calibration")), "an object with a, b or timed networks")]
    bad = [f"{name} {meta.get(name)!r} (need {need})" for name, ok, need in checks if not ok]
    return "bad " + "; ".join(bad) if bad else None


def _calibration_ok(cal: Any) -> bool:
    if cal is None:
        return True
    if not isinstance(cal, dict):
        return False
    nets = cal.get("networks")
    if nets is not None:
        return isinstance(nets, list) and all(
            isinstance(n, dict) and _number(n.get("ms"), 1e-9) and isinstance(n.get("keys"), list)
            and n["keys"] and all(isinstance(k, str) for k in n["keys"]) for n in nets)
    return _number(cal.get("a", 1.0), 1e-9) and _number(cal.get("b", 0.0), -1e9)


MAX_ENTRY_MS = 1e5  # no single layer takes 100 s; larger values are corrupt


def read_rows(path: Path) -> dict[str, dict[str, float]]:
    """The table's rows by key, every one validated: a known key, finite positive times in order,
    at least one run, no key twice. A torn last line (an interrupted build) is skipped."""
    rows: dict[str, dict[str, float]] = {}
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or [c for c in COLUMNS if c not in reader.fieldnames]:
                raise GhostNASError(f"{path}: not a ghostnas LUT (columns {reader.fieldnames}); "
                                    f"expected {COLUMNS}")
            for n, raw in enumerate(reader, start=2):
                try:
                    row = {c: float(raw[c]) for c in FEATURES + ["median_ms", "p10_ms", "p90_ms", "runs"]}
                    key = Entry.from_key(raw["key"]).key  # also renames keys of an older format
                except (TypeError, ValueError, KeyError, AttributeError, GhostNASError):
                    if fh.read(1) == "":  # a torn last line from an interrupted build: skip it
                        break
                    raise GhostNASError(f"{path}: corrupt row at line {n}; rebuild or delete that line") from None
                bad = _bad_times(row)
                if bad:
                    raise GhostNASError(f"{path}: line {n} ({raw['key']}): {bad}; re-measure that entry "
                                        "(delete the line and resume `ghostnas lut build`)")
                if key in rows:
                    raise GhostNASError(f"{path}: line {n}: entry {key} appears twice; keep one")
                row["kind"] = raw["kind"]
                rows[key] = row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise GhostNASError(f"{path}: unreadable LUT ({exc})") from None
    return rows


def _bad_times(row: dict[str, float]) -> str | None:
    times = [row["p10_ms"], row["median_ms"], row["p90_ms"]]
    if not all(math.isfinite(t) for t in times + [row["runs"]]):
        return "a time is not a finite number"
    if not 0 < row["median_ms"] <= MAX_ENTRY_MS or min(times) < 0:
        return f"median {row['median_ms']:g} ms is not a time in (0, {MAX_ENTRY_MS:g}]"
    if row["runs"] < 1:
        return "runs must be at least 1"
    return None


def fit_calibration(model: LatencyModel, networks: list[dict[str, Any]]) -> dict[str, Any]:
    """whole = a * sum + b over networks ``{"keys": [entry keys], "ms": measured whole}``, by
    least squares on relative error (the target is a percentage error, not milliseconds)."""
    xs = [sum(model.entry_ms(Entry.from_key(k))[0] for k in n["keys"]) for n in networks]
    ys = [float(n["ms"]) for n in networks]
    w = [1.0 / y ** 2 for y in ys]
    sw, sx, sy = sum(w), sum(wi * x for wi, x in zip(w, xs)), sum(wi * y for wi, y in zip(w, ys))
    sxx, sxy = sum(wi * x * x for wi, x in zip(w, xs)), sum(wi * x * y for wi, x, y in zip(w, xs, ys))
    det = sw * sxx - sx * sx
    a = (sw * sxy - sx * sy) / det if det > 0 else sy / sx
    b = (sy - a * sx) / sw if det > 0 else 0.0
    return {"a": a, "b": b, "networks": networks}

