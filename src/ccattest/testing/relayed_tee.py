"""A relay through a genuine TEE, on real NVFlare, for the sealed-models test
(tests/e2e/test_sealing.py): the attack issue 14 names, "site-2's name, another TEE".

- `TeeService` is ccattest inside a genuine TEE, fed the stolen kit's name: the POC's TEE is
  the software TEE, so "inside" means the process that holds the site's attestation key
  (keys/site.key.pem), which the test moves out of site-2's kit. It answers each challenge
  with evidence that binds its own in-memory sealing key, exactly as ccattest would.
- `RelayingCCManager` is the hostile CC manager on the stolen startup kit: it has every file
  of the kit but the attestation key, forwards every challenge (registration and rounds) to
  the TEE and presents what comes back, with the TEE's sealing key, since any other key
  breaks the binding. Its own sealing key is the one its process can use.

Attestation cannot tell the relay from the real site; sealing makes it worthless: models
are sealed to the TEE's key. `TeeService` can also open a captured payload, so the test shows
the bound key is the TEE's and not merely some key the relayer lacks.

    python -m ccattest.testing.relayed_tee CC_CONFIG SOCKET    (the TEE; SOCKET made 0600)
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..mesh.agent import SiteAgent
from ..mesh.config import CollectConfig, build_agent, load_cc_config, sealing_keys
from ..mesh.wire import bundle_from_wire, bundle_to_wire
from ..nvflare.manager import CCManager
from ..nvflare.sealing import read_line
from ..seal.envelope import SealContext, open_sealed
from ..seal.keys import SealingPublicKey
from ..timeutil import utcnow

KEY_ID_FILE = "tee-key-id"  # beside the socket: the key the TEE binds
RELAYER_KEY_FILE = "relayer-key-id"  # in the relayer's cc folder: the key it holds
MAX_LINE = 64 * 2**20  # a request or answer line (an opened NumPy model fits)
log = logging.getLogger("ccattest.testing.relay")


# --- the genuine TEE -------------------------------------------------------------------------
class TeeService:
    """ccattest's agent inside the TEE, serving challenges on a Unix socket."""

    def __init__(self, cc_config: Path, path: Path) -> None:
        config, base = load_cc_config(cc_config)
        self.agent = build_agent(config, base)
        if self.agent.sealing is None:
            raise SystemExit("the TEE's cc_config must have seal: on")
        self.path = path

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        at = utcnow()
        if request.get("op") == "collect":
            evidence, key = self.agent.collect_bound(bytes.fromhex(request["nonce"]),
                                                     str(request["context"]), at)
            return {"bundle": bundle_to_wire(evidence, key)}
        if request.get("op") == "open":
            context = SealContext(**request["context"])
            plain = open_sealed(base64.b64decode(request["payload"]),
                                self.agent.sealing.openers(at), context)  # type: ignore[union-attr]
            return {"plain": base64.b64encode(bytes(plain)).decode()}
        return {"error": f"unknown op {request.get('op')!r}"}

    def serve(self) -> None:
        self.path.unlink(missing_ok=True)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            old = os.umask(0o177)
            try:
                server.bind(str(self.path))
            finally:
                os.umask(old)
            server.listen(8)
            key = self.agent.sealing.current(utcnow()).public  # type: ignore[union-attr]
            (self.path.parent / KEY_ID_FILE).write_text(key.key_id)
            while True:
                conn, _ = server.accept()
                with conn:
                    try:
                        reply = self.answer(json.loads(read_line(conn, MAX_LINE)))
                    except Exception as exc:
                        reply = {"error": f"{type(exc).__name__}: {exc}"}
                    conn.sendall(json.dumps(reply).encode() + b"\n")


def ask_tee(path: Path | str, request: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(json.dumps(request).encode() + b"\n")
        answer = json.loads(read_line(conn, MAX_LINE))
    if "error" in answer:
        raise RuntimeError(f"the TEE refused: {answer['error']}")
    return answer


# --- the relayer -----------------------------------------------------------------------------
class _Relayed:
    """Stands for the TEE's attester in the relayer's agent (so the site counts as CC);
    never asked to collect: RelayingAgent.collect_bound goes to the TEE instead."""

    platform = "software"

    def collect(self, report_data: bytes) -> Any:
        raise RuntimeError("the relayer has no TEE of its own")


@dataclass
class RelayingAgent(SiteAgent):
    tee_socket: str = ""

    def collect_bound(self, nonce: bytes, context: str, at: datetime | None = None
                      ) -> tuple[list[Any], SealingPublicKey | None]:
        answer = ask_tee(self.tee_socket, {"op": "collect", "nonce": nonce.hex(),
                                           "context": context})
        return bundle_from_wire(answer["bundle"])


class RelayingCCManager(CCManager):
    """The CC manager of a stolen startup kit on a machine without the TEE."""

    def __init__(self, cc_config: str = "cc/cc_config.yaml", tee_socket: str = "") -> None:
        super().__init__(cc_config)
        self.tee_socket = tee_socket

    def _build_agent(self, config: Any, base: Path) -> Any:
        # Everything of the kit but the attestation key: verifiers, policy, roster.
        kit = build_agent(config.model_copy(update={"collect": CollectConfig()}), base,
                          self.telemetry)
        own = sealing_keys(config.seal)
        if own is not None:
            (base / RELAYER_KEY_FILE).write_text(own.current(utcnow()).public.key_id)
        log.warning("relaying %s's attestation to the TEE at %s", config.site, self.tee_socket)
        return RelayingAgent(config.site, [_Relayed()], kit.verifiers, kit.policy, kit.roster,
                             telemetry=self.telemetry, sealing=own, tee_socket=self.tee_socket)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m ccattest.testing.relayed_tee CC_CONFIG SOCKET")
    TeeService(Path(argv[0]), Path(argv[1])).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
