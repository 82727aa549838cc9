"""mesh.Transport over NVFlare cell channels: JSON bodies, bounded waits, typed failures."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from nvflare.fuel.f3.cellnet.core_cell import make_reply
from nvflare.fuel.f3.cellnet.defs import MessageHeaderKey, ReturnCode
from nvflare.fuel.f3.message import Message

from ..errors import CCAttestError, MalformedEvidence
from ..mesh.transport import PeerUnreachable

CHANNEL = "ccattest"
MAX_BODY = 16 * 1024 * 1024
log = logging.getLogger(__name__)

Handler = Callable[[str, str, dict[str, Any]], dict[str, Any]]


class PeerRefused(CCAttestError):
    """The peer answered with an error (e.g. it rejected the round)."""


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _decode(payload: Any) -> dict[str, Any]:
    raw = bytes(payload or b"")
    if len(raw) > MAX_BODY:
        raise MalformedEvidence("ccattest message too large", found=len(raw))
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nesting too deep: a peer's bomb
        raise MalformedEvidence("ccattest message is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedEvidence("ccattest message is not an object")
    return body


class CellTransport:
    def __init__(self, cell: Any) -> None:
        self.cell = cell

    def request(self, target: str, topic: str, body: dict[str, Any], *, timeout: float
                ) -> dict[str, Any]:
        reply = self.cell.send_request(channel=CHANNEL, topic=topic, target=target,
                                       request=Message(headers={}, payload=_encode(body)),
                                       timeout=timeout)
        rc = reply.get_header(MessageHeaderKey.RETURN_CODE)
        if rc != ReturnCode.OK:
            raise PeerUnreachable(f"{target} did not answer {topic}", found=rc)
        answer = _decode(reply.payload)
        if "error" in answer:
            raise PeerRefused(f"{target} refused {topic}", found=str(answer["error"])[:300])
        return answer


def serve(cell: Any, topics: list[str], handler: Handler) -> None:
    """Register `handler` for `topics`; the sender is the cell's authenticated origin."""

    def on_request(request: Message) -> Message:
        origin = str(request.get_header(MessageHeaderKey.ORIGIN))
        topic = str(request.get_header(MessageHeaderKey.TOPIC))
        try:
            answer = handler(origin, topic, _decode(request.payload))
        except CCAttestError as error:
            answer = {"error": f"{type(error).__name__}: {error}"}
        except Exception as error:  # a handler bug must answer, not hang the peer
            log.exception("ccattest handler failed for %s from %s", topic, origin)
            answer = {"error": f"internal error: {type(error).__name__}"}
        return make_reply(ReturnCode.OK, "", _encode(answer))

    for topic in topics:
        cell.register_request_cb(channel=CHANNEL, topic=topic, cb=on_request)
