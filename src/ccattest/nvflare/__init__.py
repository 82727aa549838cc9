"""The NVFlare adapter: thin glue between NVFlare 2.9 events and cells and ccattest.mesh.

Import the submodules (ccattest.nvflare.manager, .authorizers, .provision) only where
nvflare is installed (`pip install ccattest[nvflare]`); this package itself imports none
of it so that `ccattest` works without NVFlare.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CCManager"]


def __getattr__(name: str) -> Any:
    # NVFlare resolves components by dotted path: ccattest.nvflare.CCManager.
    if name == "CCManager":
        from .manager import CCManager

        return CCManager
    raise AttributeError(name)
