"""A job filter for the sealing tests: records what a task's DXO looks like where it runs
(after the site-level filters on the way out), one JSON line per payload in the job's run
folder, so a test can see whether models left a site as ciphertext. With `keep`, each sealed
payload is also kept whole beside it (PROBE_FILE.<n>.bin), with the round it was sealed
for, so a test can try to open it elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

from nvflare.apis.dxo import from_shareable
from nvflare.apis.filter import Filter
from nvflare.apis.fl_constant import FLContextKey
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import ReservedHeaderKey, Shareable
from nvflare.app_common.app_constant import AppConstants

PROBE_FILE = "ccattest-wire-probe.jsonl"


class WireProbe(Filter):
    def __init__(self, keep: bool = False) -> None:
        super().__init__()
        self.keep = keep

    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        if shareable.get_header(ReservedHeaderKey.CONTENT_TYPE) != "DXO":
            return shareable
        dxo = from_shareable(shareable)
        peer = fl_ctx.get_peer_context()
        values = dxo.data.values() if isinstance(dxo.data, dict) else []
        sealed = next((v for v in values if isinstance(v, bytes | bytearray)), None)
        line = {"direction": str(fl_ctx.get_prop(FLContextKey.FILTER_DIRECTION)),
                "task": fl_ctx.get_prop(FLContextKey.TASK_NAME),
                "peer": peer.get_identity_name() if peer is not None else None,
                "keys": sorted(map(str, dxo.data)) if isinstance(dxo.data, dict) else [],
                "arrays": sum(type(v).__name__ == "ndarray" for v in values),
                "sealed_prefix": None if sealed is None else bytes(sealed[:8]).hex()}
        workspace = fl_ctx.get_prop(FLContextKey.WORKSPACE_OBJECT)
        folder = Path(workspace.get_run_dir(fl_ctx.get_job_id()))
        if self.keep and sealed is not None:
            kept = sorted(folder.glob(PROBE_FILE + ".*.bin"))
            path = folder / f"{PROBE_FILE}.{len(kept)}.bin"
            path.write_bytes(bytes(sealed))
            current = fl_ctx.get_prop(AppConstants.CURRENT_ROUND)
            if current is None:  # as SealFilter takes it; a client's result may have none
                current = shareable.get_header(AppConstants.CURRENT_ROUND)
            line.update(file=path.name, round=None if current is None else int(current))
        with (folder / PROBE_FILE).open("a") as out:
            out.write(json.dumps(line) + "\n")
        return shareable
