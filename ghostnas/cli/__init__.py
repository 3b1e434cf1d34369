"""The ``ghostnas`` command: parses arguments (parser.py, a table of commands and typed options) and
calls the library (the cmd_*.py handlers, thin); text.py renders for people.

Every user mistake surfaces as one line on stderr (``ghostnas: error: ...``) and exit status 2;
``--json`` prints one machine-readable object on stdout instead of tables.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from ..errors import GhostNASError
from ..io import sigint_as_interrupt
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigint_as_interrupt():
            module, _, function = args.handler.partition(":")
            return getattr(importlib.import_module(f"{__name__}.{module}"), function)(args)
    except GhostNASError as exc:
        print(f"ghostnas: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `ghostnas space show | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("ghostnas: interrupted; finished work is saved", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
