"""CCAuthorizer-compatible authorizers, so ccattest's verifiers also work under NVFlare's
stock CCManager (nvflare.app_opt.confidential_computing).

That interface has no verifier challenge (`generate()` takes no nonce), so a token here is
self-challenged: a fresh random value and a timestamp bound into the evidence together with
the attester's identity. `verify()` accepts it only inside `max_age_seconds`, only once
(replay cache), and only when it satisfies this site's own policy. ccattest's own
CCManager (ccattest.nvflare.CCManager) does better: verifier-issued challenges.

resources.json:
    {"id": "snp_authorizer", "path": "ccattest.nvflare.authorizers.SNPAuthorizer",
     "args": {"cc_config": "local/cc/cc_config.yaml"}}     (relative to the workspace root)
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..errors import CCAttestError, MalformedEvidence
from ..freshness import ReplayCache, check_window
from ..mesh.agent import SiteAgent
from ..mesh.config import build_agent, load_cc_config
from ..mesh.wire import evidence_from_wire, evidence_to_wire, parse_hex, parse_time
from ..timeutil import utcnow

try:
    from nvflare.app_opt.confidential_computing.cc_authorizer import CCAuthorizer
except ImportError:  # pragma: no cover - without the [nvflare] extra
    from abc import ABC as CCAuthorizer  # type: ignore[assignment]

CONTEXT = "ccattest/authorizer"
MAX_TOKEN = 1024 * 1024
log = logging.getLogger("ccattest.nvflare")


def _nonce(value: bytes, at: str) -> bytes:
    return hashlib.sha256(b"ccattest/authorizer" + value + at.encode()).digest()


class _AgentAuthorizer(CCAuthorizer):  # noqa: B024 - abstract only without nvflare
    platform = ""
    also: tuple[str, ...] = ()  # further evidence platforms this authorizer speaks for

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.platform, *self.also)

    def __init__(self, cc_config: str = "local/cc/cc_config.yaml",
                 max_age_seconds: float = 300.0) -> None:
        config, base = load_cc_config(Path(cc_config))
        self.agent: SiteAgent = build_agent(config, base)
        self.max_age = timedelta(seconds=max_age_seconds)
        self._seen = ReplayCache(ttl=2 * self.max_age, what="authorizer token")

    def get_namespace(self) -> str:
        return f"x-ccattest-{self.platform}"

    def generate(self) -> str:
        at = utcnow().isoformat()
        value = secrets.token_bytes(32)
        attesters = [a for a in self.agent.attesters if a.platform in self.accepted]
        evidence = [a.collect(self.agent.collect_report_data(_nonce(value, at), CONTEXT,
                                                             a.platform)) for a in attesters]
        body = {"site": self.agent.identity, "nonce": value.hex(), "time": at,
                "evidence": evidence_to_wire(evidence)}
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()

    def verify(self, token: str) -> bool:
        try:
            return self._verify(token)
        except CCAttestError as error:
            log.warning("ccattest: %s token refused: %s", self.platform, error)
            return False

    def _verify(self, token: str) -> bool:
        if not isinstance(token, str) or len(token) > MAX_TOKEN:
            raise MalformedEvidence("token is not a string of acceptable size")
        try:
            body: Any = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, UnicodeDecodeError):
            raise MalformedEvidence("token does not decode") from None
        if not isinstance(body, dict) or not isinstance(body.get("site"), str):
            raise MalformedEvidence("token is malformed")
        value = parse_hex(body.get("nonce"), 32, "token nonce")
        sent = parse_time(body.get("time"), "token time")
        now = utcnow()
        check_window(sent, at=now, max_age=self.max_age)
        self._seen.check_and_add(value, at=now)
        evidence = [e for e in evidence_from_wire(body.get("evidence"))
                    if e.platform in self.accepted]
        verdict = self.agent.judge(body["site"], evidence,
                                   nonce=_nonce(value, body["time"]), context=CONTEXT, at=now)
        if not verdict.affirming:
            log.warning("ccattest: %s token from %s is %s: %s", self.platform, body["site"],
                        verdict.status, "; ".join(verdict.failures()[:3]))
        return verdict.affirming


class SoftwareAuthorizer(_AgentAuthorizer):
    """The development TEE; its policy must allow `software` by name."""

    platform = "software"


class SNPAuthorizer(_AgentAuthorizer):
    """AMD SEV-SNP: native verification, no snpguest subprocess, no temp files."""

    platform = "snp"


class GPUAuthorizer(_AgentAuthorizer):
    """NVIDIA GPU CC: native SPDM verification against the pinned device root and the RIMs
    the site's cc_config names; no deprecated SDK, no remote service required."""

    platform = "nvgpu"


class TDXAuthorizer(_AgentAuthorizer):
    """Intel TDX: native DCAP quote verification against the site's collateral; no
    trustauthority-cli, no sudo, no token on a command line."""

    platform = "tdx"


class AzureCVMAuthorizer(_AgentAuthorizer):
    """Azure confidential VMs: the HCL report verified natively (SNP or TDX) and a vTPM quote
    bound to it; no sudo, no temp files."""

    platform = "azure-snp"
    also = ("azure-tdx",)


class ACIAuthorizer(_AgentAuthorizer):
    """Azure Confidential Container Instances: MAA tokens from the SKR sidecar, bound to a
    nonce through runtime data and judged by the azure policy section."""

    platform = "maa"
