"""The IDX file format of MNIST and Fashion-MNIST, read and validated (no torch).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values. Everything a reader could trust blindly is
checked here instead: the magic, the type, that the dimensions multiply to the bytes present,
and (by the caller) that images and labels agree in count. A truncated download or a foreign file
is one line naming the file and the problem, never a reshape traceback.

Files may be gzipped (as distributed) or not; gzip is recognised by its own magic bytes, not by
the name.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import GhostNASError

# type code -> numpy dtype (big-endian, as the format stores multi-byte values)
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 4


def read_idx(path: "str | Path") -> np.ndarray:
    """The array an IDX file holds (native byte order)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except OSError as exc:  # includes gzip.BadGzipFile and EOFError's OSError cousins
        raise GhostNASError(f"{path}: cannot read ({exc}); download the file again") from None
    except (EOFError, zlib.error) as exc:
        raise GhostNASError(f"{path}: truncated or corrupt gzip ({exc}); download the file again") from None
    return parse_idx(raw, str(path))


def parse_idx(raw: bytes, where: str = "IDX data") -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise GhostNASError(f"{where}: not an IDX file (bad magic number); expected an MNIST-style "
                            "*-idx?-ubyte file")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise GhostNASError(f"{where}: unknown IDX type code 0x{code:02x}; not an MNIST-style file")
    if not 1 <= ndim <= MAX_DIMS:
        raise GhostNASError(f"{where}: IDX header declares {ndim} dimensions (1-{MAX_DIMS} expected)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise GhostNASError(f"{where}: truncated IDX header ({len(raw)} bytes); download the file again")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise GhostNASError(f"{where}: {what}: header {'x'.join(map(str, dims))} needs {expected:,} bytes "
                            f"of data, file has {got:,}; download the file again")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a writable copy in native order


def write_idx(path: "str | Path", array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` as IDX (tests and users converting their own data)."""
    codes = {v.newbyteorder("="): k for k, v in IDX_TYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise GhostNASError(f"IDX cannot hold dtype {array.dtype}")
    code = codes[dtype]
    body = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
            + np.ascontiguousarray(array).astype(IDX_TYPES[code]).tobytes())
    Path(path).write_bytes(gzip.compress(body, compresslevel=1) if compress else body)
