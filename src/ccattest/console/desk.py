"""The console's verifier for attesters outside NVFlare: challenge, then judge the evidence
that answers it the way the serving site's CC manager judges a peer (its own agent:
verifiers, policy and roster, `SiteAgent.judge`), and sign the verdict as an EAR with the
site's result key, the key the federation's JWKS publishes.

The console never writes a site's files: verdicts given here are answered, not recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import CCAttestError, ConfigError, MalformedEvidence, PlatformUnavailable
from ..evidence import BIND_DOMAIN, Evidence, bind
from ..freshness import ChallengeIssuer
from ..mesh.agent import SiteAgent, SiteVerdict, report_data_size
from ..mesh.config import build_agent, load_cc_config
from ..mesh.recording import RESULT_KEY_FILE
from ..mesh.wire import evidence_from_wire
from ..nvflare.kits import RESOURCES_FILE, Kit, component_entry
from ..result import AttestationResult, Reason, TrustClaim, TrustVector
from ..timeutil import utcnow
from ..tokens import SigningKey, sign_results
from .ratelimit import RateLimiter
from .views import Federation

API_CONTEXT = "ccattest/api/"  # keeps API evidence apart from registration and rounds
CHALLENGE_TTL = timedelta(minutes=2)  # as registration's window: collection takes seconds
MAX_CONTEXT = 256  # characters of a caller's context
MAX_NAME = 128  # characters of an attester's name
# A failed result expires when made (appraise_failure); its EAR lives this long so that a
# caller can still hand the refusal on. It vouches for nothing.
REFUSAL_LIFETIME = timedelta(minutes=1)
SITE_SUBMOD = "site"  # the EAR submod for site-level reasons (never a platform's name)
_CONTRAINDICATED_CONFIGURATION = 96  # AR4SI: the configuration is unacceptable


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    context: str = Field(default="", max_length=MAX_CONTEXT)
    attester: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)


_M = TypeVar("_M", bound=_Request)


class ChallengeRequest(_Request):
    pass


class AttestRequest(_Request):
    nonce: str = Field(pattern=r"^(?:[0-9a-fA-F]{2}){16,64}$")  # hex, as registration sends it
    evidence: list[Any] | dict[str, Any]  # the wire's envelope list, or one envelope


def parse_request(model: type[_M], data: Any) -> _M:
    try:
        return model.model_validate({} if data is None else data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                    for e in exc.errors()[:8]]
        raise MalformedEvidence("the request does not parse", found=problems,
                                hint="see the API's openapi.json or the console docs") from None


@dataclass
class AttestDesk:
    """What the two routes call; thread-safe as its issuer and limiter are."""

    agent: SiteAgent
    key: SigningKey
    clock: Callable[[], datetime] = utcnow
    ttl: timedelta = CHALLENGE_TTL
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def __post_init__(self) -> None:
        self.issuer = ChallengeIssuer(ttl=self.ttl, clock=self.clock,
                                      verifier_id=self.agent.identity)

    @property
    def site(self) -> str:
        return self.agent.identity

    def challenge(self, data: Any) -> dict[str, Any]:
        request = parse_request(ChallengeRequest, data)
        issued = self.issuer.issue(request.context)
        binding = API_CONTEXT + issued.binding_context()
        answer: dict[str, Any] = {
            "nonce": issued.nonce.hex(), "issued_at": issued.issued_at.isoformat(),
            "expires_at": issued.expires_at.isoformat(), "verifier": self.site,
            "context": request.context,
            "binding": {"domain": BIND_DOMAIN.decode(), "context": binding,
                        "report_data": "bind(nonce, attester, context): SHA-512 (64 bytes; "
                        "SHA-256, 32 bytes, for nvgpu) over the domain and the "
                        "length-prefixed nonce, attester and context"},
        }
        if request.attester is not None:
            # What each platform's evidence must carry, as SiteAgent.collect binds it.
            answer["report_data"] = {
                platform: bind(issued.nonce, request.attester, binding,
                               size=report_data_size(platform)).hex()
                for platform in sorted(self.agent.verifiers)}
            answer["attester"] = request.attester
        return answer

    def attest(self, data: Any) -> dict[str, Any]:
        request = parse_request(AttestRequest, data)
        nonce = bytes.fromhex(request.nonce)
        raw = request.evidence if isinstance(request.evidence, list) else [request.evidence]
        evidence = evidence_from_wire(raw)
        self._check_platforms(evidence)
        attester = request.attester or _named_attester(evidence)
        at = self.clock()
        issued = self.issuer.redeem(nonce, request.context, at=at)  # once, or StaleEvidence
        verdict = self.agent.judge(attester, evidence, nonce=nonce,
                                   context=API_CONTEXT + issued.binding_context(), at=at)
        return {"verdict": verdict_json(verdict), "ear": self._ear(verdict, nonce, at),
                "kid": self.key.kid}

    def _check_platforms(self, evidence: list[Evidence]) -> None:
        if not evidence:
            raise MalformedEvidence("no evidence in the request",
                                    expected="a list of evidence envelopes", found="[]")
        platforms = [item.platform for item in evidence]
        unknown = sorted({p for p in platforms if p not in self.agent.verifiers})
        if unknown:
            raise PlatformUnavailable(f"{self.site} has no verifier for {', '.join(unknown)}",
                                      expected=", ".join(sorted(self.agent.verifiers)),
                                      found=", ".join(unknown))
        if len(set(platforms)) != len(platforms):
            raise MalformedEvidence("two evidence envelopes for one platform",
                                    expected="one envelope per platform",
                                    found=", ".join(platforms))

    def _ear(self, verdict: SiteVerdict, nonce: bytes, at: datetime) -> str:
        results = [_signable(result, at) for result in verdict.results]
        site = _site_result(verdict, at, self.agent.policy.id)
        if site is not None:
            results.append(site)
        return sign_results(results, self.key, issued_at=at, nonce=nonce, subject=verdict.site)


def _named_attester(evidence: list[Evidence]) -> str:
    names = {item.attester for item in evidence}
    if len(names) != 1 or None in names:
        raise MalformedEvidence("the request names no attester",
                                expected='"attester", or one attester in every envelope',
                                found=", ".join(sorted(str(n) for n in names)) or "none")
    return str(names.pop())


def _signable(result: AttestationResult, at: datetime) -> AttestationResult:
    if result.affirming or result.expires_at - at >= timedelta(seconds=1):
        return result
    return replace(result, expires_at=at + REFUSAL_LIFETIME)


def _site_result(verdict: SiteVerdict, at: datetime, policy_id: str | None
                 ) -> AttestationResult | None:
    """Site-level reasons (roster, identity, required platforms) as one more submod, so that
    the EAR can never read affirming where the verdict is not."""
    failed = tuple(reason for reason in verdict.reasons if not reason.passed)
    if not verdict.cc_enabled:
        failed = (Reason("roster", False, f"{verdict.site} is not CC-enabled in the roster of "
                         "this site", expected="a CC-enabled site", found="not-cc"),)
    if not failed:
        return None
    vector = TrustVector({TrustClaim.CONFIGURATION: _CONTRAINDICATED_CONFIGURATION})
    return AttestationResult(platform=SITE_SUBMOD, trust_vector=vector, verified=False,
                             issued_at=at, expires_at=at + REFUSAL_LIFETIME, reasons=failed,
                             attester=verdict.site, policy_id=policy_id)


def verdict_json(verdict: SiteVerdict) -> dict[str, Any]:
    vector = TrustVector()
    for result in verdict.results:
        vector = vector.merged(result.trust_vector)
    return {"attester": verdict.site, "status": verdict.status,
            "affirming": verdict.affirming, "at": verdict.at.isoformat(),
            "expires_at": verdict.expires_at.isoformat(),
            "trust_vector": vector.to_dict(), "failures": verdict.failures(),
            "results": [result.to_json_dict() for result in verdict.results],
            "reasons": [reason.to_dict() for reason in verdict.reasons if not reason.passed]}


# --- which site verifies -------------------------------------------------------------------
def verifying_kit(federation: Federation) -> Kit:
    """The server's kit where there is one, else the only kit."""
    kit = federation.server or (federation.kits[0] if len(federation.kits) == 1 else None)
    if kit is None:
        raise ConfigError("no kit here can verify: no server kit, and more than one client",
                          found=", ".join(k.name for k in federation.kits),
                          hint="serve the server's kit, or a folder with it")
    return kit


def cc_config_path(kit: Kit) -> Path:
    """Where the site's CCManager reads its config: its resources entry, else the default."""
    name = _configured(kit.local / RESOURCES_FILE)
    args = component_entry()["args"]
    default = args["cc_config"] if isinstance(args, Mapping) else "cc/cc_config.yaml"
    return kit.local / (name or str(default))


def _configured(resources: Path) -> str | None:
    try:
        data = json.loads(resources.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    components = data.get("components") if isinstance(data, dict) else None
    for entry in components if isinstance(components, list) else []:
        if isinstance(entry, dict) and entry.get("path") == component_entry()["path"]:
            args = entry.get("args")
            name = args.get("cc_config") if isinstance(args, dict) else None
            return name if isinstance(name, str) and name else None
    return None


def open_desk(federation: Federation, **options: Any) -> AttestDesk:
    """The desk of the verifying kit, from the files its CC manager uses; ConfigError when
    they are missing or do not load."""
    kit = verifying_kit(federation)
    path = cc_config_path(kit)
    if not path.is_file():
        raise ConfigError(f"{kit.name} has no CC config at {path}",
                          hint="configure the kit with `ccattest nvflare configure`")
    config, base = load_cc_config(path)
    agent = build_agent(config, base)
    if not agent.verifiers:
        raise ConfigError(f"{path} verifies no platform", expected="a verify section")
    if config.record is None:
        raise ConfigError(f"{path} has no record section, so no result key to sign with",
                          hint="provisioning writes keys/result.key.pem with the record")
    key_path = base / config.record.key_dir / RESULT_KEY_FILE
    try:
        key = SigningKey.from_pem(key_path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read the result key {key_path}",
                          found=exc.strerror or type(exc).__name__) from None
    return AttestDesk(agent, key, **options)


def desk_or_reason(federation: Federation, **options: Any) -> AttestDesk | CCAttestError:
    """The desk, or why there is none (the routes then answer 503; the console still runs)."""
    try:
        return open_desk(federation, **options)
    except CCAttestError as error:
        return error
