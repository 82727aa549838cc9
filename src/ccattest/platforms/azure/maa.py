"""Microsoft Azure Attestation (MAA) tokens: RS256 JWTs from an allow-listed MAA instance.

Keys. MAA publishes its signing keys at `<instance>/certs` as a JWKS whose entries carry
`kid`, `kty` RSA and an `x5c` holding the (self-signed) signing certificate; `n`/`e` may be
absent. The token header names the JWKS in `jku`. ccattest accepts a `jku` only when it is
exactly `<allow-listed instance>/certs`; anything else is refused before any key lookup or
fetch. Keys come from an offline JWKS (`jwks=`) or, for an allow-listed instance, from a
`JwksClient` that fetches `<instance>/certs` over HTTPS and caches it for a TTL. Trust in a
key is trust in the instance's HTTPS endpoint (or in whoever supplied the offline JWKS):
MAA's x5c certificates do not chain to a public root, so no chain is built here. Where a
JWK carries both `n`/`e` and `x5c`, they must be the same key.

Binding. A signature check proves only that MAA issued the token. What ties it to our
challenge is the runtime data: the attester sends MAA runtime data
`{"nonce": "<hex of report_data>"}` (compact JSON, see `runtime_data_for`); the SKR sidecar
puts SHA-256 of those bytes into the SNP report's report_data, MAA checks that, and echoes
the JSON object as the `x-ms-runtime` claim. The token binds our report_data when
`x-ms-runtime.nonce` (or `x-ms-runtime["client-payload"].nonce`) equals its lowercase hex
("runtime_data"), or when the SNP report_data MAA reports is exactly our report_data
("report_data"). report_data=None is only accepted with allow_unbound (binding
"not_checked"). The claim `runtime_digest_match` says whether the reported SNP report_data
is SHA-256 of our canonical runtime data (informational: another attester may format the
JSON differently, and MAA has already checked the hash of the bytes it was sent).

Claims. The raw token claims stay under "token"; the SNP report fields MAA exposes are
mapped onto the SNP verifier's names (measurement, host_data, report_data, guest_svn, vmpl,
reported_tcb, id_key_digest, ...). For `azurevm` tokens they come from
`x-ms-isolation-tee`. The verifier never judges claims: see ccattest.policy.azure.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import httpx
import jwt
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from ...collateral.cache import CollateralCache, Key, Window, register_kind
from ...errors import (
    CCAttestError,
    CollateralUnavailable,
    ConfigError,
    MalformedEvidence,
    VerificationFailed,
)
from ...evidence import Evidence
from ...jws import (
    check_audience,
    check_token_times,
    date_claim,
    expiry,
    parse_header,
    short,
    token_text,
)
from ...result import Reason
from ...timeutil import require_aware
from ..base import VerifiedClaims

PLATFORM = "maa"
JWS_ALGORITHM = "RS256"
CERTS_PATH = "/certs"
JWKS_KIND = "maa.jwks"
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 1 << 20
DEFAULT_TTL = timedelta(hours=1)
_HEX = re.compile(r"[0-9a-fA-F]*")
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?|::1")
_JWT_OPTIONS = {
    "verify_signature": True, "verify_exp": False, "verify_nbf": False, "verify_iat": False,
    "verify_aud": False, "verify_iss": False, "verify_sub": False, "verify_jti": False,
    "require": [],
}
_RETRYABLE = frozenset({429}) | frozenset(range(500, 600))

# MAA's SNP claims (without the "x-ms-sevsnpvm-" prefix) -> (SNP claim name, size in bytes).
SNP_HEX_CLAIMS: Mapping[str, tuple[str, int]] = {
    "launchmeasurement": ("measurement", 48),
    "hostdata": ("host_data", 32),
    "reportdata": ("report_data", 64),
    "idkeydigest": ("id_key_digest", 48),
    "authorkeydigest": ("author_key_digest", 48),
    "reportid": ("report_id", 32),
    "familyId": ("family_id", 16),
    "imageId": ("image_id", 16),
}
SNP_INT_CLAIMS: Mapping[str, str] = {"guestsvn": "guest_svn", "vmpl": "vmpl"}
# MAA's SVN claims are the report's reported_tcb components (checked on the real sample).
SNP_TCB_CLAIMS: Mapping[str, str] = {
    "bootloader-svn": "bootloader", "tee-svn": "tee", "snpfw-svn": "snp",
    "microcode-svn": "microcode",
}
SNP_FLAG_CLAIMS: Mapping[str, str] = {
    "is-debuggable": "debug", "migration-allowed": "migrate_ma", "smt-allowed": "smt",
}
SNP_PREFIX = "x-ms-sevsnpvm-"


# --- instances and the runtime data convention ------------------------------------------------

def normalize_instance(url: str) -> str:
    """An MAA instance base URL as compared with `jku` and `iss`: scheme and lowercase host
    (and port), no path, no trailing slash. https only, except loopback hosts (tests)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError("MAA instance must be a URL", expected="https://<name>.attest.azure.net",
                          found=short(url))
    text = url.strip().rstrip("/")
    if "://" not in text:
        text = "https://" + text
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigError("MAA instance URL does not parse", found=str(exc)) from None
    host = parsed.host.lower()
    if not _HOST.fullmatch(host) or parsed.path not in ("", "/") or parsed.query \
            or parsed.fragment:
        raise ConfigError("MAA instance must be a bare base URL",
                          expected="https://<name>.attest.azure.net", found=short(url))
    if parsed.scheme != "https" and not (parsed.scheme == "http" and host in _LOOPBACK):
        raise ConfigError("MAA instance must use https", expected="https://...",
                          found=short(url))
    port = f":{parsed.port}" if parsed.port is not None else ""
    shown = f"[{host}]" if ":" in host else host
    return f"{parsed.scheme}://{shown}{port}"


def runtime_data_for(report_data: bytes) -> bytes:
    """The runtime data an attester sends MAA to bind `report_data`: compact JSON
    {"nonce": "<lowercase hex>"}. The SNP report then carries SHA-256 of these bytes."""
    if not isinstance(report_data, bytes | bytearray) or not report_data:
        raise ConfigError("report_data must be non-empty bytes",
                          found=type(report_data).__name__)
    return json.dumps({"nonce": bytes(report_data).hex()}, separators=(",", ":")).encode()


def snp_report_data_for(report_data: bytes) -> bytes:
    """What the SNP report_data holds when the sidecar bound `runtime_data_for(report_data)`:
    its SHA-256, zero-padded to 64 bytes."""
    return hashlib.sha256(runtime_data_for(report_data)).digest() + bytes(32)


# --- JWKS --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MaaKey:
    """One usable signing key from an MAA JWKS."""

    kid: str
    public_key: rsa.RSAPublicKey
    certificate: x509.Certificate | None

    def describe(self) -> dict[str, str]:
        if self.certificate is None:
            return {"kid": self.kid, "source": "jwk n/e"}
        cert = self.certificate
        return {"kid": self.kid, "source": "jwk x5c", "subject": cert.subject.rfc4514_string(),
                "sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat()}


def _b64url_int(jwk: Mapping[str, Any], name: str, where: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} member {name} is not base64url", found=short(value))
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} member {name} is not base64url", found=short(value)) from None
    return int.from_bytes(raw, "big")


def _x5c_certificate(jwk: Mapping[str, Any], where: str) -> x509.Certificate | None:
    x5c = jwk.get("x5c")
    if x5c is None:
        return None
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        raise ConfigError(f"{where} x5c is not a list of base64 certificates",
                          found=short(x5c))
    try:
        return x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
    except (binascii.Error, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{where} x5c certificate does not parse",
                          found=short(str(exc), 120)) from None


def _jwk_key(jwk: Mapping[str, Any], where: str) -> MaaKey:
    if jwk.get("kty") != "RSA":
        raise ConfigError(f"{where} is not an RSA key", expected="kty RSA",
                          found=short(jwk.get("kty")))
    if "d" in jwk or "p" in jwk:
        raise ConfigError(f"{where} contains private key material", expected="public keys only")
    for name, allowed in (("alg", JWS_ALGORITHM), ("use", "sig")):
        if name in jwk and jwk[name] != allowed:
            raise ConfigError(f"{where} is restricted to another {name}", expected=allowed,
                              found=short(jwk[name]))
    certificate = _x5c_certificate(jwk, where)
    try:  # cryptography decodes the certificate's key only when asked
        from_cert = None if certificate is None else certificate.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{where} x5c certificate's key does not parse",
                          expected="an RSA public key", found=short(str(exc), 120)) from None
    if from_cert is not None and not isinstance(from_cert, rsa.RSAPublicKey):
        raise ConfigError(f"{where} x5c certificate does not hold an RSA key",
                          found=type(from_cert).__name__)
    if "n" in jwk or "e" in jwk:
        numbers = rsa.RSAPublicNumbers(_b64url_int(jwk, "e", where), _b64url_int(jwk, "n", where))
        if from_cert is not None and from_cert.public_numbers() != numbers:
            raise ConfigError(f"{where} n/e are not the key of its x5c certificate",
                              hint="a JWKS whose members disagree is not trusted")
        try:
            key = numbers.public_key()
        except ValueError as exc:
            raise ConfigError(f"{where} is not a valid RSA key", found=str(exc)) from None
    elif from_cert is not None:
        key = from_cert
    else:
        raise ConfigError(f"{where} has neither n/e nor x5c", expected="an RSA public key")
    if key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"{where} is too short", expected=f">= {MIN_RSA_BITS} bits",
                          found=key.key_size)
    return MaaKey(str(jwk["kid"]), key, certificate)


def load_maa_jwks(source: Mapping[str, Any] | bytes | str | Path) -> dict[str, MaaKey]:
    """kid -> key for every addressable key of an MAA JWKS (a mapping, JSON bytes/text, or
    a file). Keys without a kid are skipped; a duplicate kid or a bad key is a ConfigError."""
    data = _jwks_data(source)
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
        raise ConfigError("malformed MAA JWKS", expected='an object with a "keys" list',
                          found=short(data))
    index: dict[str, MaaKey] = {}
    for position, jwk in enumerate(data["keys"]):
        where = f"MAA JWKS key {position}"
        if not isinstance(jwk, Mapping):
            raise ConfigError(f"malformed {where}", expected="a JSON object", found=short(jwk))
        kid = jwk.get("kid")
        if kid is None:
            continue
        if not isinstance(kid, str):
            raise ConfigError(f"{where} has a non-string kid", found=short(kid))
        if kid in index:
            raise ConfigError("MAA JWKS has duplicate kid", expected="unique kids", found=kid)
        index[kid] = _jwk_key(jwk, f"{where} ({kid})")
    if not index:
        raise ConfigError("MAA JWKS holds no usable keys", expected="at least one key with a kid")
    return index


def _jwks_data(source: Mapping[str, Any] | bytes | str | Path) -> Any:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Path):
        try:
            source = source.read_bytes()
        except OSError as exc:
            raise ConfigError("cannot read MAA JWKS", found=exc.strerror or str(exc)) from None
    if len(source) > MAX_JWKS_BYTES:
        raise ConfigError("MAA JWKS too large", expected=f"<= {MAX_JWKS_BYTES} bytes",
                          found=len(source))
    try:
        return json.loads(source)
    except (ValueError, RecursionError) as exc:
        raise ConfigError("MAA JWKS is not JSON", found=short(str(exc), 120)) from None


# --- the cache item: a fetched JWKS and how long it may be used --------------------------------

def _envelope(instance: str, jwks: Mapping[str, Any], fetched_at: datetime,
              ttl: timedelta) -> bytes:
    return json.dumps({"instance": instance, "fetched_at": fetched_at.isoformat(),
                       "ttl_seconds": int(ttl.total_seconds()), "jwks": jwks},
                      sort_keys=True, separators=(",", ":")).encode()


def _open_envelope(data: bytes) -> tuple[str, datetime, int, Any]:
    try:
        body = json.loads(data)
        fetched_at = require_aware(datetime.fromisoformat(body["fetched_at"]), "fetched_at")
        ttl = body["ttl_seconds"]
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError("ttl_seconds must be a positive integer")
        return str(body["instance"]), fetched_at, ttl, body["jwks"]
    except (ValueError, TypeError, KeyError, RecursionError, ConfigError) as exc:
        raise MalformedEvidence("cached MAA JWKS does not parse",
                                found=short(str(exc), 120)) from None


def check_jwks_item(key: Key, data: bytes) -> Window:
    """Cache checker for "maa.jwks": key (instance,), valid for its TTL from fetched_at."""
    instance, fetched_at, ttl, jwks = _open_envelope(data)
    if tuple(key) != (instance,):
        raise MalformedEvidence("cached MAA JWKS is for another instance",
                                expected=list(key), found=instance)
    load_maa_jwks(jwks)
    return Window(fetched_at, fetched_at + timedelta(seconds=ttl))


register_kind(JWKS_KIND, check_jwks_item)


class JwksClient:
    """Fetches `<instance>/certs` with httpx (timeout, retries with backoff on 429, 5xx and
    connection errors) and keeps it in a CollateralCache for `ttl` from the time of use.
    Times come from the caller (`at`); the clock is never read here. `offline` serves only
    from the cache and never opens a connection."""

    def __init__(self, instance: str, *, cache: CollateralCache | None = None,
                 ttl: timedelta = DEFAULT_TTL, timeout: float = 5.0, retries: int = 2,
                 backoff: float = 0.2, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, offline: bool = False) -> None:
        if not isinstance(retries, int) or retries < 0 or backoff < 0 or timeout <= 0 \
                or ttl.total_seconds() < 1:
            raise ConfigError("bad MAA JWKS client settings",
                              expected="retries >= 0, backoff >= 0, timeout > 0, ttl >= 1 s",
                              found=f"retries {retries}, backoff {backoff}, timeout {timeout}, "
                                    f"ttl {ttl}")
        self.instance = normalize_instance(instance)
        self.url = self.instance + CERTS_PATH
        self.cache = cache if cache is not None else CollateralCache()
        self.ttl, self.retries, self.backoff = ttl, retries, backoff
        self.offline = offline
        self._sleep = sleep
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport,
                                  follow_redirects=False,
                                  headers={"User-Agent": "ccattest-maa"})

    def __enter__(self) -> JwksClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def keys(self, *, at: datetime) -> dict[str, MaaKey]:
        """The instance's keys: cached while fresh at `at`, else fetched and cached."""
        return load_maa_jwks(self.jwks(at=at))

    def jwks(self, *, at: datetime) -> Any:
        at = require_aware(at, "JWKS lookup time")
        with self._lock:
            cached = self.cache.get(JWKS_KIND, (self.instance,), at)
            if cached is not None:
                return _open_envelope(cached.data)[3]
            if self.offline:
                raise CollateralUnavailable(
                    f"offline, and no JWKS for {self.instance} is available",
                    expected=f"a cached copy of {self.url}",
                    found=f"nothing valid in the cache at {at.isoformat()}",
                    hint=f"pass the JWKS served at {self.url} with --jwks FILE, or import a "
                         "collateral bundle made with `ccattest collateral export` on a "
                         "connected machine whose cache holds it")
            jwks = self._download()
            self.cache.put(JWKS_KIND, (self.instance,),
                           _envelope(self.instance, jwks, at, self.ttl), source=self.url,
                           fetched_at=at)
            return jwks

    def _download(self) -> Any:
        body = self._get()
        try:
            jwks = json.loads(body)
            load_maa_jwks(jwks)
        except (ValueError, RecursionError, ConfigError) as exc:
            message = exc.message if isinstance(exc, CCAttestError) else str(exc)
            raise CollateralUnavailable(f"MAA answered {self.url} with an unusable JWKS",
                                        found=short(message, 120)) from None
        return jwks

    def _get(self) -> bytes:
        failures: list[str] = []
        for attempt in range(self.retries + 1):
            body, failure, retry = self._try()
            if body is not None:
                return body
            failures.append(failure)
            if not retry:
                break
            if attempt < self.retries:
                self._sleep(min(self.backoff * 2 ** attempt, 10.0))
        raise CollateralUnavailable(f"cannot fetch the MAA signing keys from {self.url}",
                                    expected="HTTP 200 with a JWKS", found="; ".join(failures),
                                    hint="check the instance, or pass an offline JWKS")

    def _try(self) -> tuple[bytes | None, str, bool]:
        try:
            with self._http.stream("GET", self.url) as response:
                if response.status_code != 200:
                    return None, f"HTTP {response.status_code}", \
                        response.status_code in _RETRYABLE
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        return None, f"response larger than {MAX_JWKS_BYTES} bytes", False
                return bytes(body), "", False
        except httpx.TimeoutException as exc:
            return None, f"timeout ({type(exc).__name__})", True
        except httpx.HTTPError as exc:
            return None, f"connection error ({type(exc).__name__})", True


# --- the token ---------------------------------------------------------------------------------

def _check_header(header: Mapping[str, Any]) -> str:
    """The kid, once the algorithm is RS256 and nothing critical is asked of us."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise VerificationFailed("token is unsigned or names no algorithm",
                                 expected=JWS_ALGORITHM, found=short(alg))
    if alg != JWS_ALGORITHM:
        # HS* would be keyed with a public key anyone has; MAA signs RS256 only.
        raise VerificationFailed("token algorithm is not accepted", expected=JWS_ALGORITHM,
                                 found=short(alg))
    if "crit" in header:
        raise VerificationFailed("token requires header extensions ccattest does not implement",
                                 expected="no crit header", found=short(header["crit"]))
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise VerificationFailed("token header names no key", expected="a kid string",
                                 found=short(kid))
    return kid


def _instance_of(header: Mapping[str, Any], instances: Sequence[str]) -> str:
    """The allow-listed instance whose /certs the header's jku is, exactly."""
    jku = header.get("jku")
    allowed = {instance + CERTS_PATH: instance for instance in instances}
    if not isinstance(jku, str) or jku not in allowed:
        raise VerificationFailed("token jku is not an allow-listed MAA instance's /certs",
                                 expected=f"one of {sorted(allowed)}", found=short(jku),
                                 hint="add the instance to the allow list if you trust it")
    return allowed[jku]


def _decode(token: str, key: MaaKey) -> dict[str, Any]:
    try:
        claims = jwt.decode(token, key=key.public_key, algorithms=[JWS_ALGORITHM],
                            options=_JWT_OPTIONS)
    except jwt.InvalidSignatureError:
        raise VerificationFailed("token signature does not verify",
                                 expected=f"an {JWS_ALGORITHM} signature by key {key.kid}",
                                 found="a signature that does not match") from None
    except jwt.DecodeError as exc:
        raise MalformedEvidence("token does not decode", found=short(str(exc), 120)) from None
    except jwt.PyJWTError as exc:
        raise VerificationFailed("token rejected",
                                 found=short(str(exc) or type(exc).__name__, 120)) from None
    return claims


def _check_key_time(key: MaaKey, at: datetime) -> None:
    cert = key.certificate
    if cert is not None and not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise VerificationFailed(f"MAA signing certificate of key {key.kid} is not valid at the "
                                 "verification time",
                                 expected=f"{cert.not_valid_before_utc.isoformat()} .. "
                                          f"{cert.not_valid_after_utc.isoformat()}",
                                 found=at.isoformat())


def _check_issuer_audience(claims: Mapping[str, Any], instance: str,
                           audience: str | None) -> None:
    if claims.get("iss") != instance:
        raise VerificationFailed("token issuer is not the instance that signed it",
                                 expected=instance, found=short(claims.get("iss")))
    check_audience(claims, audience)


# --- claims inside the token -------------------------------------------------------------------

def tee_section(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    """Where the TEE's claims are: x-ms-isolation-tee for azurevm tokens, else the top."""
    nested = claims.get("x-ms-isolation-tee")
    if nested is None:
        return claims
    if not isinstance(nested, Mapping):
        raise MalformedEvidence("token claim x-ms-isolation-tee is not an object",
                                found=short(nested))
    return nested


def _string(section: Mapping[str, Any], name: str) -> str | None:
    value = section.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedEvidence(f"token claim {name} is not a string", found=short(value))
    return value


def _flag(section: Mapping[str, Any], name: str) -> bool | None:
    value = section.get(name)
    if value is not None and not isinstance(value, bool):
        raise MalformedEvidence(f"token claim {name} is not a boolean", found=short(value))
    return value


def _integer(section: Mapping[str, Any], name: str, bits: int) -> int | None:
    value = section.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise MalformedEvidence(f"token claim {name} is not a {bits}-bit unsigned integer",
                                found=short(value))
    return value


def _hex(section: Mapping[str, Any], name: str, size: int) -> str | None:
    value = section.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 2 * size or not _HEX.fullmatch(value):
        raise MalformedEvidence(f"token claim {name} is not {size} bytes of hex",
                                found=short(value))
    return value.lower()


def snp_claims(section: Mapping[str, Any]) -> dict[str, Any]:
    """The SNP report fields MAA exposes, under the SNP verifier's claim names; a field the
    token does not carry is None (reported_tcb and policy hold only the parts present)."""
    claims: dict[str, Any] = {}
    for source, (name, size) in SNP_HEX_CLAIMS.items():
        claims[name] = _hex(section, SNP_PREFIX + source, size)
    for source, name in SNP_INT_CLAIMS.items():
        claims[name] = _integer(section, SNP_PREFIX + source, 32)
    tcb = {name: _integer(section, SNP_PREFIX + source, 8)
           for source, name in SNP_TCB_CLAIMS.items()}
    claims["reported_tcb"] = {name: value for name, value in tcb.items() if value is not None}
    policy = {name: _flag(section, SNP_PREFIX + source)
              for source, name in SNP_FLAG_CLAIMS.items()}
    claims["policy"] = {name: value for name, value in policy.items() if value is not None}
    return claims


def runtime_nonce(claims: Mapping[str, Any]) -> str | None:
    """The nonce in the runtime data MAA echoed (x-ms-runtime), if any."""
    runtime = claims.get("x-ms-runtime")
    if runtime is None:
        return None
    if not isinstance(runtime, Mapping):
        raise MalformedEvidence("token claim x-ms-runtime is not an object",
                                found=short(runtime))
    for holder in (runtime, runtime.get("client-payload")):
        if isinstance(holder, Mapping) and "nonce" in holder:
            nonce = holder["nonce"]
            if not isinstance(nonce, str):
                raise MalformedEvidence("runtime data nonce is not a string",
                                        found=short(nonce))
            return nonce
    return None


def binding_of(claims: Mapping[str, Any], report_data: bytes | None,
               allow_unbound: bool) -> str:
    """How the token binds `report_data` (see the module docstring), or why it does not."""
    if report_data is None:
        if not allow_unbound:
            raise ConfigError("no expected report_data given",
                              hint="pass report_data, or allow_unbound=True to accept a token "
                                   "that binds nothing of ours")
        return "not_checked"
    if not isinstance(report_data, bytes | bytearray) or not report_data:
        raise ConfigError("expected report_data must be non-empty bytes",
                          found=type(report_data).__name__)
    expected = bytes(report_data).hex()
    nonce = runtime_nonce(claims)
    # compare_digest refuses non-ASCII str (TypeError): compare the UTF-8 bytes instead
    if nonce is not None and hmac.compare_digest(nonce.lower().encode(), expected.encode()):
        return "runtime_data"
    reported = _hex(tee_section(claims), SNP_PREFIX + "reportdata", 64)
    if reported is not None and hmac.compare_digest(reported, expected):
        return "report_data"
    raise VerificationFailed("token does not bind the expected report_data",
                             expected=f"x-ms-runtime.nonce {expected}",
                             found=f"nonce {short(nonce)}, SNP report_data {short(reported)}",
                             hint="wrong nonce, wrong identity, or a replayed token")


def _digest_match(snp: Mapping[str, Any], report_data: bytes | None) -> bool | None:
    if report_data is None or snp.get("report_data") is None:
        return None
    return snp["report_data"] == snp_report_data_for(bytes(report_data)).hex()


def map_claims(claims: Mapping[str, Any], *, binding: str, at: datetime,
               report_data: bytes | None = None) -> dict[str, Any]:
    """The token's claims under ccattest's names, the raw claims kept under "token"."""
    kind = _string(claims, "x-ms-attestation-type")
    tee = tee_section(claims)
    isolation = _string(tee, "x-ms-attestation-type") if tee is not claims else kind
    snp = snp_claims(tee)
    debuggable = _flag(tee, SNP_PREFIX + "is-debuggable")
    mapped: dict[str, Any] = {
        "attestation_type": kind,
        "isolation_tee": isolation,
        "compliance_status": (_string(claims, "x-ms-compliance-status")
                              or _string(tee, "x-ms-compliance-status")),
        "debuggable": debuggable,
        "secure_boot": _flag(claims, "secureboot"),
        "launch_measurement": snp["measurement"],
        **snp,
        "runtime_digest_match": _digest_match(snp, report_data),
        "policy_hash": _string(claims, "x-ms-policy-hash"),
        "binding": binding,
        "issuer": claims.get("iss"),
        "issued_at": date_claim(claims, "iat"),
        "expires_at": date_claim(claims, "exp"),
        "verified_at": at.isoformat(),
        "token": dict(claims),
    }
    return mapped


# --- the verifier ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Outcome:
    claims: dict[str, Any]
    key: MaaKey
    instance: str
    key_source: str


_BINDING_NOTES = {
    "runtime_data": "the runtime data MAA echoed (x-ms-runtime) carries the expected nonce",
    "report_data": "the SNP report_data MAA reports equals the expected report_data",
    "not_checked": "report_data not checked (allow_unbound): the token binds nothing of ours",
}


class MaaVerifier:
    """Verifies MAA tokens carried as evidence.report (the JWT text)."""

    platform: ClassVar[str] = PLATFORM

    def __init__(self, *, instances: Sequence[str],
                 jwks: Mapping[str, Any] | bytes | Path | None = None,
                 client: JwksClient | Sequence[JwksClient] | None = None,
                 audience: str | None = None, leeway: timedelta = timedelta(0),
                 allow_unbound: bool = False) -> None:
        if isinstance(instances, str) or not instances:
            raise ConfigError("no MAA instances allowed", expected="a list of instance URLs",
                              found=short(instances))
        self.instances = tuple(dict.fromkeys(normalize_instance(url) for url in instances))
        self._offline = None if jwks is None else load_maa_jwks(jwks)
        self._clients = self._index_clients(client)
        if self._offline is None and not self._clients:
            raise ConfigError("no MAA signing keys configured",
                              hint="pass jwks= (offline) or client=JwksClient(instance)")
        if leeway < timedelta(0):
            raise ConfigError("leeway must not be negative", found=str(leeway))
        self.audience, self.leeway, self.allow_unbound = audience, leeway, allow_unbound

    def _index_clients(self, client: JwksClient | Sequence[JwksClient] | None
                       ) -> dict[str, JwksClient]:
        clients = [] if client is None else [client] if isinstance(client, JwksClient) \
            else list(client)
        index: dict[str, JwksClient] = {}
        for item in clients:
            if not isinstance(item, JwksClient):
                raise ConfigError("MAA key client must be a JwksClient",
                                  found=type(item).__name__)
            if item.instance not in self.instances:
                raise ConfigError("JWKS client is for an instance that is not allow-listed",
                                  expected=f"one of {list(self.instances)}", found=item.instance)
            index[item.instance] = item
        return index

    def verify(self, evidence: Evidence, *, report_data: bytes | None, at: datetime,
               allow_unbound: bool | None = None) -> VerifiedClaims:
        if evidence.platform != PLATFORM:
            raise MalformedEvidence("evidence is for another platform", expected=PLATFORM,
                                    found=evidence.platform)
        outcome = self._outcome(token_text(evidence.report, "MAA"), at, report_data, allow_unbound)
        return VerifiedClaims(platform=PLATFORM, claims=outcome.claims,
                              checks=self._checks(outcome), attester=None,
                              collateral={"instance": outcome.instance,
                                          "jwks_source": outcome.key_source,
                                          "signing_key": outcome.key.describe()},
                              valid_until=expiry(outcome.claims["token"]),
                              valid_until_source="MAA token exp")

    def verify_token(self, token: str, *, report_data: bytes | None, at: datetime,
                     allow_unbound: bool | None = None) -> dict[str, Any]:
        return self._outcome(token, at, report_data, allow_unbound).claims

    def _outcome(self, token: str, at: datetime, report_data: bytes | None,
                 allow_unbound: bool | None) -> _Outcome:
        at = require_aware(at, "verification time")
        header = parse_header(token)
        kid = _check_header(header)
        instance = _instance_of(header, self.instances)
        key, source = self._key(instance, kid, at)
        _check_key_time(key, at)
        claims = _decode(token, key)
        check_token_times(claims, at, self.leeway)
        _check_issuer_audience(claims, instance, self.audience)
        unbound = self.allow_unbound if allow_unbound is None else allow_unbound
        binding = binding_of(claims, report_data, unbound)
        mapped = map_claims(claims, binding=binding, at=at, report_data=report_data)
        return _Outcome(mapped, key, instance, source)

    def _key(self, instance: str, kid: str, at: datetime) -> tuple[MaaKey, str]:
        if self._offline is not None and kid in self._offline:
            return self._offline[kid], "offline"
        client = self._clients.get(instance)
        keys = client.keys(at=at) if client is not None else {}
        if kid not in keys:
            raise VerificationFailed("token signed by a key not in the MAA JWKS",
                                     expected=f"a kid published by {instance}",
                                     found=short(kid))
        return keys[kid], client.url if client is not None else "offline"

    def _checks(self, outcome: _Outcome) -> tuple[Reason, ...]:
        binding = outcome.claims["binding"]
        checks = [
            Reason("jku", True, f"jku is {outcome.instance}{CERTS_PATH} (allow-listed)"),
            Reason("algorithm", True, f"{JWS_ALGORITHM} token; key {outcome.key.kid[:16]}... "
                                      f"from {outcome.key_source}"),
            Reason("signature", True, f"{JWS_ALGORITHM} token signature verifies"),
            Reason("freshness", True, "exp, iat and nbf hold at the given time"),
            Reason("issuer", True, f"issuer is {outcome.instance}"),
        ]
        if self.audience is not None:
            checks.append(Reason("audience", True, f"audience includes {self.audience}"))
        checks.append(Reason("binding", binding != "not_checked", _BINDING_NOTES[binding]))
        return tuple(checks)


__all__ = [
    "CERTS_PATH",
    "JWKS_KIND",
    "JWS_ALGORITHM",
    "PLATFORM",
    "SNP_HEX_CLAIMS",
    "JwksClient",
    "MaaKey",
    "MaaVerifier",
    "binding_of",
    "check_jwks_item",
    "load_maa_jwks",
    "map_claims",
    "normalize_instance",
    "runtime_data_for",
    "runtime_nonce",
    "snp_claims",
    "snp_report_data_for",
    "tee_section",
]
