"""The `ccattest` command: one module per command group.

Each module registers its commands on `app` when imported; heavy imports (verifiers,
pydantic policy models, HTTP clients, NVFlare) happen inside the commands.
"""

from __future__ import annotations

import signal
import sys

from . import collateral, collect, demo, nvflare, policy, status, token, verify  # noqa: F401
from .app import app


def main() -> None:
    # Writing to a closed pipe (`ccattest verify ... | head -2`) ends quietly, not with a
    # traceback; the default SIGPIPE action keeps the exit status the shell expects.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app(prog_name="ccattest")
    sys.exit(0)  # pragma: no cover - app() always exits


__all__ = ["app", "main"]
