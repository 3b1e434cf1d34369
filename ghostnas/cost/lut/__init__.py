"""Latency lookup tables (LUTs) built on the target device, and predictions from them, split by job:

- ``keys``: the entries a network is timed by (stem, each block, final conv, head) and a space's
  entries (no torch);
- ``table``: a table (CSV + ``.meta.json``), its predictor for missing entries and calibration;
- ``timing``: backends (torch, onnxruntime, litert), the reference block, the allocator setting;
- ``build``: ``lut build`` and ``lut check`` on this machine;
- ``device`` and ``adb``: the round trip to another device (export blocks + runner, import).

A LUT is a CSV of measured entries plus a JSON sidecar (``FILE.meta.json``) with the device,
backend and its version, threads, date, space and the end-to-end calibration. No pickles.
"""

from .build import build_lut, check_lut
from .device import export_blocks, import_measurements
from .keys import COLUMNS, FEATURES, Entry, arch_entries, predictor_features, select_entries, space_entries
from .table import LUT_FORMAT, PREDICTOR, LatencyModel, fit_calibration, read_rows
from .timing import (BACKEND_MODULES, REFERENCE, backend_installed, backend_version, entry_module, measure,
                     measure_arch, measure_reference)

__all__ = ["BACKEND_MODULES", "COLUMNS", "Entry", "FEATURES", "LUT_FORMAT", "LatencyModel", "PREDICTOR",
           "REFERENCE", "arch_entries", "backend_installed", "backend_version", "build_lut", "check_lut",
           "entry_module", "export_blocks", "fit_calibration", "import_measurements", "measure",
           "measure_arch", "measure_reference", "predictor_features", "read_rows", "select_entries",
           "space_entries"]
