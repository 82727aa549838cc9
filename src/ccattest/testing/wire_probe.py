"""A job filter for the sealing tests: records what a task's DXO looks like where it runs
(after the site-level filters on the way out), one JSON line per payload in the job's run
folder, so a test can see whether models left a site as ciphertext."""

from __future__ import annotations

import json
from pathlib import Path

from nvflare.apis.dxo import from_shareable
from nvflare.apis.filter import Filter
from nvflare.apis.fl_constant import FLContextKey
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import ReservedHeaderKey, Shareable

PROBE_FILE = "ccattest-wire-probe.jsonl"


class WireProbe(Filter):
    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        if shareable.get_header(ReservedHeaderKey.CONTENT_TYPE) != "DXO":
            return shareable
        dxo = from_shareable(shareable)
        peer = fl_ctx.get_peer_context()
        values = dxo.data.values() if isinstance(dxo.data, dict) else []
        line = {"direction": str(fl_ctx.get_prop(FLContextKey.FILTER_DIRECTION)),
                "task": fl_ctx.get_prop(FLContextKey.TASK_NAME),
                "peer": peer.get_identity_name() if peer is not None else None,
                "keys": sorted(map(str, dxo.data)) if isinstance(dxo.data, dict) else [],
                "arrays": sum(type(v).__name__ == "ndarray" for v in values),
                "sealed_prefix": next((bytes(v[:8]).hex() for v in values
                                       if isinstance(v, bytes | bytearray)), None)}
        workspace = fl_ctx.get_prop(FLContextKey.WORKSPACE_OBJECT)
        folder = Path(workspace.get_run_dir(fl_ctx.get_job_id()))
        with (folder / PROBE_FILE).open("a") as out:
            out.write(json.dumps(line) + "\n")
        return shareable
