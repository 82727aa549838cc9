"""Sealed models on NVFlare: a site-level filter (privacy.json's default scope, written by
`ccattest nvflare configure` and the CCBuilder, so jobs carry no code) seals each task's
DXO data to its recipient's attested key and opens what is sealed to this site.

NVFlare runs filters in the job processes; the sealing keys and the trust book live in the
site's own process (CCManager). So the site process serves two questions on a local socket
(`SealService`): "the key to seal to PEER" (refused without a current affirming verdict)
and "unwrap this content key" (the private key never leaves it). The socket is abstract
(no file, no path length limit) and each request carries a secret the site process writes
at start to local/cc/seal.secret (0600): a process that can read that file can read the
job's memory too.

What is sealed: only `DXO.data` (serialised with NVFlare's FOBS); the DXO's kind, its
meta and every header NVFlare routes by stay clear. The seal is bound to job id, task
name, round, sender and recipient (seal/envelope.py), each taken from this side's own
context, never from the payload.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

from nvflare.apis.dxo import DXO, from_shareable
from nvflare.apis.filter import Filter
from nvflare.apis.fl_constant import FLContextKey
from nvflare.apis.fl_context import FLContext
from nvflare.apis.shareable import ReservedHeaderKey, Shareable
from nvflare.app_common.app_constant import AppConstants

from ..errors import CCAttestError, MalformedEvidence, PolicyRejected
from ..mesh.sealing import SealDesk
from ..seal.envelope import SealContext, SealedPayloadInvalid, open_sealed, seal
from ..seal.keys import SealingPublicKey
from ..timeutil import utcnow

log = logging.getLogger("ccattest.nvflare")

SECRET_FILE = "seal.secret"  # noqa: S105 - a file name, not a secret
SEALED = "ccattest.sealed"  # the one key of a sealed DXO's data
META = "ccattest.seal"  # in the DXO's meta: who sealed it for whom (clear, informative)
MAX_LINE = 64 * 1024
SERVER = "server"


def socket_name(cc_dir: Path) -> bytes:
    """The abstract socket of the site whose local/cc is `cc_dir`."""
    digest = hashlib.sha256(str(cc_dir.resolve()).encode()).hexdigest()[:24]
    return b"\0ccattest-seal-" + digest.encode()


class SealService:
    """The site process's side: answers its job processes until closed."""

    def __init__(self, desk: SealDesk, cc_dir: Path, *, role: str) -> None:
        self.desk = desk
        self.role = role
        self.secret = secrets.token_hex(32)
        path = cc_dir / SECRET_FILE
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.secret)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(socket_name(cc_dir))
        self._socket.listen(16)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="ccattest-seal",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        self._socket.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                request = json.loads(read_line(conn))
                answer = self.answer(request)
            except (OSError, ValueError) as exc:
                answer = {"error": f"bad request: {type(exc).__name__}"}
            with contextlib.suppress(OSError):  # the job process went away
                conn.sendall(json.dumps(answer).encode() + b"\n")

    def answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("secret"), str) or \
                not hmac.compare_digest(request["secret"].encode(), self.secret.encode()):
            return {"error": "not this site's job"}
        op = request.get("op")
        try:
            if op == "whoami":
                return {"site": self.desk.identity, "role": self.role}
            if op == "key":
                key = self.desk.recipient(str(request.get("site")), utcnow())
                return {"clear": True} if key is None else {"key": key.to_wire()}
            if op == "expects":
                return {"sealed": self.desk.expects_sealed(str(request.get("site")))}
            if op == "unwrap":
                content = self.desk.unwrap(int(request["suite"]), str(request["key_id"]),
                                           bytes.fromhex(request["enc"]),
                                           bytes.fromhex(request["info"]), utcnow())
                return {"key": content.hex()}
        except CCAttestError as error:
            return {"error": str(error), "kind": type(error).__name__}
        except (KeyError, TypeError, ValueError):
            return {"error": "malformed request"}
        return {"error": f"unknown operation {str(op)[:20]!r}"}


def read_line(conn: socket.socket, limit: int = MAX_LINE) -> bytes:
    """One newline-ended message (or what came before the peer closed), at most `limit`."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise ValueError("request too long")
    return bytes(data)


class SealClient:
    """A job process's side."""

    def __init__(self, cc_dir: Path) -> None:
        self.name = socket_name(cc_dir)
        try:
            self.secret = (cc_dir / SECRET_FILE).read_text().strip()
        except OSError as exc:
            raise PolicyRejected("this site's ccattest is not serving sealing keys",
                                 found=str(exc), hint="is the CC manager running with "
                                 "seal: on?") from None

    def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(30)
            try:
                conn.connect(self.name)
                conn.sendall(json.dumps({"op": op, "secret": self.secret, **fields}).encode()
                             + b"\n")
                answer = json.loads(read_line(conn))
            except (OSError, ValueError) as exc:
                raise PolicyRejected("cannot reach this site's ccattest for sealing",
                                     found=str(exc)) from None
        if "error" in answer:
            if answer.get("kind") == SealedPayloadInvalid.__name__:  # keep what failed
                raise SealedPayloadInvalid(str(answer["error"]),
                                           hint="replayed from another job, task, round or "
                                           "pair of sites, or altered")
            raise PolicyRejected(str(answer["error"]))
        return answer

    def unwrap(self, suite_id: int, key_id: str, enc: bytes, info: bytes) -> bytes:
        return bytes.fromhex(self.ask("unwrap", suite=suite_id, key_id=key_id,
                                      enc=enc.hex(), info=info.hex())["key"])


class SealFilter(Filter):
    """Seals task data and results going out, opens those coming in (both directions: the
    chain's direction says which). Fails closed: a payload it cannot seal or open stops
    the task for that peer rather than travel or arrive in clear."""

    # Rounds of the tasks this client received, to bind its results to the same round.
    _rounds: ClassVar[OrderedDict[str, int]] = OrderedDict()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        super().__init__()
        self._client: SealClient | None = None
        self._me: tuple[str, str] | None = None

    def process(self, shareable: Shareable, fl_ctx: FLContext) -> Shareable:
        if shareable.get_header(ReservedHeaderKey.CONTENT_TYPE) != "DXO" or "DXO" not in shareable:
            return shareable  # error replies and other non-model messages pass
        client = self._client_for(fl_ctx)
        me, role = self._whoami(client)
        peer = self._peer(fl_ctx, role)
        outgoing = str(fl_ctx.get_prop(FLContextKey.FILTER_DIRECTION)) == "out"
        context = self._context(shareable, fl_ctx, role, outgoing,
                                sender=me if outgoing else peer,
                                recipient=peer if outgoing else me)
        if outgoing:
            return self._seal(shareable, client, context)
        return self._open(shareable, client, context)

    # --- who and where ----------------------------------------------------------------------
    def _client_for(self, fl_ctx: FLContext) -> SealClient:
        if self._client is None:
            workspace = fl_ctx.get_prop(FLContextKey.WORKSPACE_OBJECT)
            self._client = SealClient(Path(workspace.get_site_config_dir()) / "cc")
        return self._client

    def _whoami(self, client: SealClient) -> tuple[str, str]:
        if self._me is None:
            answer = client.ask("whoami")
            self._me = (str(answer["site"]), str(answer["role"]))
        return self._me

    @staticmethod
    def _peer(fl_ctx: FLContext, role: str) -> str:
        if role != "server":
            return SERVER  # NVFlare names the server after the project; the mesh, "server"
        peer = fl_ctx.get_peer_context()
        name = peer.get_identity_name() if peer is not None else None
        if not name:
            raise PolicyRejected("a task has no peer to seal it for")
        return str(name)

    def _context(self, shareable: Shareable, fl_ctx: FLContext, role: str, outgoing: bool,
                 *, sender: str, recipient: str) -> SealContext:
        task = str(fl_ctx.get_prop(FLContextKey.TASK_NAME) or "")
        task_id = str(fl_ctx.get_prop(FLContextKey.TASK_ID) or "")
        if role == "server":
            current = fl_ctx.get_prop(AppConstants.CURRENT_ROUND)
            if current is None:
                current = shareable.get_header(AppConstants.CURRENT_ROUND)
        elif not outgoing:  # task data: the server's round; remembered for the result
            current = shareable.get_header(AppConstants.CURRENT_ROUND)
            with self._lock:
                self._rounds[task_id] = int(current or 0)
                while len(self._rounds) > 256:
                    self._rounds.popitem(last=False)
        else:
            with self._lock:
                current = self._rounds.get(task_id, 0)
        return SealContext(job=str(fl_ctx.get_job_id()), task=task, round=int(current or 0),
                           sender=sender, recipient=recipient)

    # --- the work ---------------------------------------------------------------------------
    def _seal(self, shareable: Shareable, client: SealClient, context: SealContext
              ) -> Shareable:
        answer = client.ask("key", site=context.recipient)
        if answer.get("clear"):
            return shareable
        recipient = SealingPublicKey.from_wire(answer["key"])
        dxo = from_shareable(shareable)
        sealed = seal(_dumps(dxo.data), recipient, context)
        # A new DXO: the server's broadcast data is one object shared by every recipient.
        meta = {**dxo.meta, META: {"v": 1, "from": context.sender, "to": context.recipient,
                                   "key": recipient.key_id[:16]}}
        log.info("ccattest: sealed %s %s round %d for %s (%d bytes)", context.task,
                 context.job[:8], context.round, context.recipient, len(sealed))
        return DXO(dxo.data_kind, {SEALED: bytes(sealed)}, meta).update_shareable(shareable)

    def _open(self, shareable: Shareable, client: SealClient, context: SealContext
              ) -> Shareable:
        dxo = from_shareable(shareable)
        if META not in dxo.meta:
            if client.ask("expects", site=context.sender)["sealed"]:
                raise PolicyRejected(f"{context.sender} sent a model in clear",
                                     expected="a payload sealed to this site's key",
                                     hint="both sites must run ccattest with seal: on")
            return shareable
        payload = dxo.data.get(SEALED) if isinstance(dxo.data, dict) else None
        if not isinstance(payload, bytes | bytearray):
            raise MalformedEvidence("a sealed DXO carries no sealed payload")
        data = _loads(open_sealed(payload, client.unwrap, context))
        meta = {k: v for k, v in dxo.meta.items() if k != META}
        return DXO(dxo.data_kind, data, meta).update_shareable(shareable)


def _fobs() -> Any:
    """NVFlare's serialiser, with the decomposers for numpy arrays and NVFlare's types."""
    from nvflare.app_common.decomposers import common_decomposers
    from nvflare.fuel.utils import fobs

    common_decomposers.register()
    return fobs


def _dumps(data: Any) -> bytes:
    return _fobs().dumps(data)


def _loads(data: bytes | bytearray) -> Any:
    try:
        return _fobs().loads(bytes(data))
    except Exception as exc:  # FOBS raises what its decomposers raise
        raise MalformedEvidence("an opened payload does not deserialise",
                                found=type(exc).__name__) from None
