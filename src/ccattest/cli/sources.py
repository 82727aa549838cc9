"""Where `ccattest verify` gets its evidence, certificates, collateral and verifier.

The evidence is parsed before anything else is asked of the user, so junk input reports its
format problem, not a missing --identity or --jwks. Nothing here creates an HTTP client when
the collateral is given (--certs, --rim, --collateral with --offline).
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MalformedEvidence
from .common import DEFAULT_CACHE, PLATFORMS, parse_hex, platform_name, read_file
from .evidence_options import EvidenceArgs

if TYPE_CHECKING:
    from ..evidence import Evidence
    from ..platforms.base import Verifier
    from ..policy.model import Policy


def load_checked(args: EvidenceArgs) -> Evidence:
    """The evidence file, parsed for its platform before anything else is asked for."""
    evidence = load(args.path, platform_name(args.platform))
    check_format(evidence)
    return evidence


def prepare(evidence: Evidence, args: EvidenceArgs, policy: Policy, at: datetime
            ) -> tuple[Evidence, Verifier, bytes | None]:
    """The evidence with its certificates and collateral, its verifier, and the report_data
    it must bind."""
    evidence = with_certs(evidence, list(args.certs))
    evidence = with_collateral(evidence, args.collateral, offline=args.offline, at=at)
    expected = expected_report_data(args.nonce, args.report_data,
                                    args.identity or evidence.attester, args.context,
                                    optional=args.allow_unbound, platform=evidence.platform)
    verifier = make_verifier(evidence, Sources(
        args.root, args.key_dir, args.jwks, args.collateral, args.offline, args.allow_unbound,
        policy, at, args.rims, args.instances, args.tdx_chain_only))
    return evidence, verifier, expected


def load(path: Path, platform: str | None) -> Evidence:
    """Evidence files as users have them; Azure CVM evidence also in trustee's JSON shapes."""
    from ..encoding import load_evidence

    data = read_file(path, "evidence file")
    if platform in ("azure-snp", "azure-tdx") and b'"format"' not in data[:4096]:
        from ..platforms.azure.vtpm import evidence_from_trustee_json

        evidence = evidence_from_trustee_json(data)
        if evidence.platform != platform:
            raise MalformedEvidence("evidence is for another platform", expected=platform,
                                    found=evidence.platform)
        return evidence
    return load_evidence(data, platform)


def with_certs(evidence: Evidence, paths: list[Path]) -> Evidence:
    if not paths:
        return evidence
    bundle = b"".join(_as_pem(read_file(path, "certificate file")) for path in paths)
    return dataclasses.replace(evidence, endorsements={**evidence.endorsements,
                                                       "cert_chain": bundle})


def with_collateral(evidence: Evidence, source: Path | None, *, offline: bool,
                    at: datetime) -> Evidence:
    """SNP evidence without a VCEK/VLEK gets it from the cache, a bundle, or AMD KDS."""
    from ..collateral import CollateralCache
    from ..collateral.sources import snp_lacks_certificates, snp_with_collateral

    if not snp_lacks_certificates(evidence):
        return evidence  # not SNP, or it (or --certs) gave the certificates
    if source is None and not offline:
        return evidence  # the verifier explains what is missing and where to get it
    cache = _cache_from(source) if source is not None else CollateralCache(None)
    return snp_with_collateral(evidence, cache, offline=offline, at=at)


def check_format(evidence: Evidence) -> None:
    """Parse the evidence's report for its platform: MalformedEvidence names the size, magic
    or version problem before the user is asked for a nonce, certificates or keys."""
    parse = _PARSERS.get(evidence.platform)
    if parse is not None:
        parse(evidence.report)


def _parse_software(report: bytes) -> None:
    from ..platforms.software.abi import parse_report

    parse_report(report)


def _parse_snp(report: bytes) -> None:
    from ..platforms.snp.abi import parse_report

    parse_report(report)


def _parse_tdx(report: bytes) -> None:
    from ..platforms.tdx.abi import parse_quote

    parse_quote(report)


def _parse_nvgpu(report: bytes) -> None:
    from ..platforms.nvgpu.abi import is_evidence_list, parse_evidence_list, parse_report

    if is_evidence_list(report):
        parse_evidence_list(report)
    else:
        parse_report(report)


def _parse_nras(report: bytes) -> None:
    from ..platforms.nvgpu.nras import parse_detached_eat

    parse_detached_eat(report)


def _parse_hcl(report: bytes) -> None:
    from ..platforms.azure.hcl import parse_hcl_report

    parse_hcl_report(report)


def _parse_jwt(report: bytes) -> None:
    from ..jws import parse_header, token_text

    parse_header(token_text(report, "token"))


_PARSERS = {"software": _parse_software, "snp": _parse_snp, "tdx": _parse_tdx,
            "nvgpu": _parse_nvgpu, "nvgpu-nras": _parse_nras, "azure-snp": _parse_hcl,
            "azure-tdx": _parse_hcl, "maa": _parse_jwt, "ita": _parse_jwt}


def _as_pem(data: bytes) -> bytes:
    if b"-----BEGIN" in data:
        return data if data.endswith(b"\n") else data + b"\n"
    body = base64.encodebytes(data).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines)
            + "\n-----END CERTIFICATE-----\n").encode()


@dataclasses.dataclass(frozen=True)
class Sources:
    """Where a verifier's trust anchors and collateral come from, per the command line."""

    root: Path | None
    key_dir: Path
    jwks: Path | None
    collateral: Path | None
    offline: bool
    allow_unbound: bool
    policy: Policy
    at: datetime
    rims: tuple[Path, ...] = ()
    instances: tuple[str, ...] = ()
    tdx_chain_only: bool = False


def make_verifier(evidence: Evidence, sources: Sources) -> Verifier:
    platform = evidence.platform
    if platform == "software":
        from ..platforms.software.pki import KeyDir, load_certificate
        from ..platforms.software.verify import SoftwareVerifier

        root = sources.root
        roots = [load_certificate(root)] if root else [KeyDir(sources.key_dir).root_certificate()]
        return SoftwareVerifier(roots)
    if platform == "snp":
        from ..platforms.snp.verify import SnpVerifier

        return SnpVerifier()
    if platform == "tdx":
        return _tdx_verifier(evidence, sources)
    if platform == "nvgpu":
        return _nvgpu_verifier(sources)
    if platform in ("azure-snp", "azure-tdx"):
        from ..platforms.azure.vtpm import AzureCvmVerifier

        return AzureCvmVerifier(platform, tdx_chain_only=sources.tdx_chain_only)
    if platform == "maa":
        from ..platforms.azure.maa import JwksClient, MaaVerifier

        if not sources.instances:
            raise ConfigError("MAA tokens are accepted only from instances you name",
                              hint="pass --instance https://<name>.attest.azure.net")
        if sources.jwks is not None:
            return MaaVerifier(instances=sources.instances, jwks=sources.jwks,
                               allow_unbound=sources.allow_unbound)
        clients = [JwksClient(instance, cache=_cache_from(sources.collateral),
                              offline=sources.offline)
                   for instance in sources.instances]
        return MaaVerifier(instances=sources.instances, client=clients,
                           allow_unbound=sources.allow_unbound)
    if platform == "nvgpu-nras":
        from ..platforms.nvgpu.nras import NrasVerifier

        if sources.jwks is None:
            raise ConfigError("NRAS results need NRAS's JWKS", hint="pass --jwks FILE")
        return NrasVerifier(sources.jwks, allow_unbound=sources.allow_unbound)
    if platform == "ita":
        from ..platforms.ita.verify import ItaVerifier, load_roots

        if sources.jwks is None or sources.root is None:
            raise ConfigError("ITA tokens need the issuer's JWKS and a root to trust",
                              hint="pass --jwks FILE and --root PEM")
        return ItaVerifier(sources.jwks, roots=load_roots(sources.root),
                           allow_unbound=sources.allow_unbound)
    raise ConfigError(f"verifying {platform} evidence is not supported",
                      expected="one of " + ", ".join(PLATFORMS))


def _nvgpu_verifier(sources: Sources) -> Verifier:
    """RIMs from --rim files, else from the collateral cache (or NVIDIA's RIM service when
    online); without either, the comparison is left out and the policy says so."""
    from ..platforms.nvgpu.rimcheck import RimCheck
    from ..platforms.nvgpu.rimservice import RimClient
    from ..platforms.nvgpu.verify import NvgpuVerifier

    client = None
    if sources.collateral is not None or not sources.offline:
        client = RimClient(cache=_cache_from(sources.collateral), offline=sources.offline)
    if not sources.rims and client is None:
        return NvgpuVerifier()
    return NvgpuVerifier(rim=RimCheck([read_file(path) for path in sources.rims], client=client))


def _tdx_verifier(evidence: Evidence, sources: Sources) -> Verifier:
    from ..collateral.sources import tdx_collateral_for, tdx_fixed_collateral
    from ..platforms.tdx.verify import TdxVerifier

    section = sources.policy.tdx
    allow_expired = section is not None and section.expired_collateral == "warn"
    source = sources.collateral
    # A folder of PCS answers or a dcap-qvl JSON file is used as it is.
    collateral = None if source is None else tdx_fixed_collateral(source, read=read_file)
    if collateral is None and (source is not None or "collateral" not in evidence.endorsements):
        # a cache folder, an offline bundle, or (online) Intel PCS; else the evidence carries it
        collateral = tdx_collateral_for(evidence.report, _cache_from(source),
                                        offline=sources.offline, at=sources.at)
    return TdxVerifier(collateral, allow_expired_collateral=allow_expired)


def _cache_from(source: Path | None) -> Any:
    """A collateral cache: the folder given, a bundle loaded into memory, or the default."""
    from ..collateral.sources import open_cache

    return open_cache(source, default=DEFAULT_CACHE)


# Evidence that may carry no challenge of ours (--allow-unbound): a service's token.
TOKEN_PLATFORMS = ("ita", "maa", "nvgpu-nras")


def expected_report_data(nonce: str | None, report_data: str | None, identity: str | None,
                          context: str, *, optional: bool = False, platform: str = ""
                          ) -> bytes | None:
    if optional and nonce is None and report_data is None:
        if platform not in TOKEN_PLATFORMS:
            raise ConfigError(f"--allow-unbound is for tokens, not {platform} evidence",
                              expected="a token platform: " + ", ".join(TOKEN_PLATFORMS),
                              found=platform, hint="give --nonce or --report-data")
        return None  # the verifier records that no binding was checked
    if nonce is None and report_data is None:
        raise ConfigError("no challenge given: the evidence's freshness cannot be checked",
                          hint="pass --nonce HEX (the challenge you sent) or --report-data HEX "
                          "(the exact report_data you expect)")
    if nonce is not None and report_data is not None:
        raise ConfigError("give --nonce or --report-data, not both")
    if report_data is not None:
        return parse_hex(report_data, "--report-data")
    if platform in ("nvgpu", "nvgpu-nras", "azure-snp", "azure-tdx") and not identity:
        # A bare GPU report, an NRAS result or a vTPM quote names no attester: the nonce is
        # the raw value that went to the GPU or into the quote's extraData.
        return parse_hex(nonce or "", "--nonce")
    if not identity:
        raise ConfigError("the evidence names no attester",
                          hint="pass --identity (the name the attester bound) or --report-data")
    from ..evidence import bind
    from ..mesh.agent import report_data_size

    size = report_data_size(platform)
    return bind(parse_hex(nonce or "", "--nonce"), identity, context, size=size)
