"""The `ccattest` command."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import socket
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from . import __version__
from .encoding import load_evidence
from .errors import (
    CCAttestError,
    CollateralUnavailable,
    ConfigError,
    PlatformUnavailable,
    VerificationFailed,
)
from .evidence import Evidence, bind
from .mesh.agent import report_data_size
from .pipeline import verify_and_appraise
from .platforms.base import Verifier
from .platforms.base import platforms as registered_platforms
from .platforms.software.collect import SoftwareAttester, default_items
from .platforms.software.pki import DEFAULT_KEY_DIR, KeyDir, load_certificate
from .platforms.software.verify import SoftwareVerifier
from .policy import load_policy
from .policy.model import DEFAULT_POLICY, Policy
from .policy.templates import starter_policy
from .render import print_error, print_result
from .result import AttestationResult, Tier
from .timeutil import parse_instant, utcnow

app = typer.Typer(
    name="ccattest",
    help="Confidential-computing attestation for federated systems: collect evidence, verify "
         "it natively, appraise it against your policy, and sign the result.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,  # locals may hold key material
)
policy_app = typer.Typer(help="Write and check appraisal policies.", no_args_is_help=True)
token_app = typer.Typer(help="Signed attestation results (EAR JWTs) and their keys.",
                        no_args_is_help=True)
collateral_app = typer.Typer(help="Fetch, export and import verification collateral "
                             "(AMD KDS certificates and CRLs) for offline sites.",
                             no_args_is_help=True)
nvflare_app = typer.Typer(help="Run ccattest's CC manager inside NVIDIA FLARE.",
                          no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(token_app, name="token")
app.add_typer(nvflare_app, name="nvflare")
app.add_typer(collateral_app, name="collateral")

DEFAULT_CACHE = Path("~/.cache/ccattest/collateral")
CacheOption = Annotated[Path, typer.Option(
    "--cache", envvar="CCATTEST_COLLATERAL", help="Collateral cache directory.")]

out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_WARNING = 0, 1, 2, 3

KeyDirOption = Annotated[Path, typer.Option(
    "--key-dir", envvar="CCATTEST_KEY_DIR",
    help="Development key directory (software root, site keys, verifier key).")]
AtOption = Annotated[str | None, typer.Option(
    "--at", help="Verify as of this ISO 8601 time instead of now (e.g. 2026-11-26T12:00Z).")]


def _fail(error: CCAttestError) -> NoReturn:
    print_error(err, error)
    raise typer.Exit(EXIT_REJECTED if isinstance(error, VerificationFailed) else EXIT_USAGE)


def _hex(value: str, what: str) -> bytes:
    try:
        return bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise ConfigError(f"{what} is not hex", found=repr(value)) from None


def _at(value: str | None) -> datetime:
    return parse_instant(value) if value else utcnow()


def exit_code(result: AttestationResult) -> int:
    if not result.verified:
        # Tier none on unverified evidence means it did not even parse: unusable input.
        return EXIT_USAGE if result.status is Tier.NONE else EXIT_REJECTED
    return {Tier.AFFIRMING: EXIT_OK, Tier.WARNING: EXIT_WARNING}.get(result.status,
                                                                     EXIT_REJECTED)


@app.callback(invoke_without_command=True)
def _root(version: Annotated[bool, typer.Option("--version", help="Show the version.")] = False
          ) -> None:
    if version:
        out.print(f"ccattest {__version__}")
        raise typer.Exit()


@app.command()
def collect(
    nonce: Annotated[str, typer.Option(help="The verifier's challenge, hex (16+ bytes).")],
    platform: Annotated[str, typer.Option(help="Evidence platform.")] = "software",
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write here instead of stdout.")] = None,
    key_dir: KeyDirOption = DEFAULT_KEY_DIR,
    site: Annotated[str | None, typer.Option(help="Site identity (default: host name).")] = None,
    context: Annotated[str, typer.Option(help="Binding context agreed with the verifier.")] = "",
    measure: Annotated[list[Path] | None, typer.Option(
        help="Also measure this file (repeatable).")] = None,
    setting: Annotated[list[str] | None, typer.Option(
        help="Also measure a setting NAME=VALUE (repeatable).")] = None,
    svn: Annotated[int, typer.Option(help="Security version of the attested software.")] = 0,
    debug: Annotated[bool, typer.Option(help="Mark the report as debug.")] = False,
) -> None:
    """Collect evidence that answers NONCE. [software] creates a development root and site key
    in --key-dir on first use; [snp] asks the SEV-SNP firmware (configfs-tsm or
    /dev/sev-guest) and includes the certificate table when the host provides one; [tdx]
    asks the TDX module through configfs-tsm."""
    try:
        identity = site or socket.gethostname().split(".")[0] or "localhost"
        report_data = bind(_hex(nonce, "--nonce"), identity, context)
        if platform == "software":
            settings = [_setting(text) for text in setting or []]
            credentials = KeyDir(key_dir).ensure_site(identity, utcnow())
            attester = SoftwareAttester(credentials, default_items(measure or [], settings),
                                        svn=svn, debug=debug)
            evidence = attester.collect(report_data)
            detail = f"measurement {attester.measurement.hex()[:16]}..."
        elif platform == "snp":
            from .platforms.snp.collect import SnpAttester

            evidence = dataclasses.replace(SnpAttester().collect(report_data),
                                           attester=identity)
            detail = f"{len(evidence.report)}-byte report"
        elif platform == "nvgpu":
            from .platforms.nvgpu.collect import NvgpuAttester

            gpu_nonce = bind(_hex(nonce, "--nonce"), identity, context, size=32)
            evidence = dataclasses.replace(NvgpuAttester().collect(gpu_nonce),
                                           attester=identity)
            detail = "GPU evidence"
        elif platform == "tdx":
            from .platforms.tdx.collect import TdxAttester

            evidence = dataclasses.replace(TdxAttester().collect(report_data),
                                           attester=identity)
            detail = f"{len(evidence.report)}-byte quote"
        else:
            raise ConfigError(f"collecting {platform} evidence is not supported yet",
                              expected="software, snp, tdx or nvgpu")
    except CCAttestError as error:
        _fail(error)
    text = evidence.to_json() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"wrote {platform} evidence for {identity} to {output} ({detail})")


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ConfigError("a setting is NAME=VALUE", found=repr(text))
    return name, value


@app.command()
def verify(
    evidence_file: Annotated[Path, typer.Argument(
        metavar="EVIDENCE", help="Evidence: a ccattest envelope, raw, hex or base64.")],
    nonce: Annotated[str | None, typer.Option(help="The challenge you issued, hex.")] = None,
    report_data: Annotated[str | None, typer.Option(
        "--report-data", help="Expected report_data, hex, instead of --nonce.")] = None,
    platform: Annotated[str | None, typer.Option(help="Platform, if not detectable.")] = None,
    identity: Annotated[str | None, typer.Option(
        help="Expected attester identity (default: the one the evidence names).")] = None,
    context: Annotated[str, typer.Option(help="Binding context agreed with the attester.")] = "",
    key_dir: KeyDirOption = DEFAULT_KEY_DIR,
    root: Annotated[Path | None, typer.Option(
        help="Software root certificate (PEM or DER) instead of --key-dir's.")] = None,
    collateral: Annotated[Path | None, typer.Option(
        help="Collateral cache directory or offline bundle, for evidence without its "
        "certificates (SNP: VCEK and chain from AMD KDS).")] = None,
    offline: Annotated[bool, typer.Option(
        help="Never fetch collateral; use only --collateral.")] = False,
    jwks: Annotated[Path | None, typer.Option(
        help="JWKS of the token issuer (ITA, NRAS).")] = None,
    instance: Annotated[list[str] | None, typer.Option(
        "--instance", help="MAA: an Azure Attestation instance whose tokens you accept "
        "(repeatable).")] = None,
    tdx_chain_only: Annotated[bool, typer.Option(
        help="Azure TDX CVM without TCB collateral: check the quote's chain only (the TCB "
        "status stays unevaluated and the policy says so).")] = False,
    rim: Annotated[list[Path] | None, typer.Option(
        "--rim", help="NVIDIA GPU reference integrity manifest (driver or VBIOS; repeatable).")
    ] = None,
    allow_unbound: Annotated[bool, typer.Option(
        help="Accept a token that binds no challenge of ours (claim binding: not_checked).")
    ] = False,
    certs: Annotated[list[Path] | None, typer.Option(
        "--certs", help="Certificates for the evidence (e.g. SNP VCEK, ASK/ARK chain; "
        "PEM or DER; repeatable).")] = None,
    policy: Annotated[Path | None, typer.Option(help="Appraisal policy (YAML).")] = None,
    at: AtOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ear: Annotated[Path | None, typer.Option(
        help="Also write the result as a signed EAR JWT (key in --key-dir).")] = None,
) -> None:
    """Verify EVIDENCE and appraise it against a policy.

    Exit status: 0 affirming, 3 warning, 1 rejected, 2 unusable input or usage."""
    try:
        when = _at(at)
        evidence = _with_certs(_load(evidence_file, platform), certs or [])
        evidence = _with_collateral(evidence, collateral, offline=offline, at=when)
        expected = _expected_report_data(nonce, report_data, identity or evidence.attester,
                                         context, optional=allow_unbound,
                                         platform=evidence.platform)
        appraisal_policy = load_policy(policy) if policy else DEFAULT_POLICY
        verifier = _verifier(evidence, _Sources(root, key_dir, jwks, collateral, offline,
                                                allow_unbound, appraisal_policy, when,
                                                tuple(rim or []), tuple(instance or []),
                                                tdx_chain_only))
        result = verify_and_appraise(evidence, verifier, appraisal_policy,
                                     report_data=expected, at=when)
        if identity and result.attester not in (None, identity):
            raise VerificationFailed("evidence comes from another site", expected=identity,
                                     found=result.attester)
        if ear is not None and result.verified:
            _write_ear(ear, result, key_dir, expected, when)
    except CCAttestError as error:
        _fail(error)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json_dict(), indent=2) + "\n")
    else:
        print_result(out, result)
        if policy is None and result.verified:
            out.print("[yellow]no --policy given: the default policy accepts no platform; "
                      "start one with `ccattest policy init`[/yellow]")
    raise typer.Exit(exit_code(result))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}", found=exc.strerror) from None


def _load(path: Path, platform: str | None) -> Evidence:
    """Evidence files as users have them; Azure CVM evidence also in trustee's JSON shapes."""
    data = _read(path)
    if platform in ("azure-snp", "azure-tdx") and b'"format"' not in data[:4096]:
        from .platforms.azure.vtpm import evidence_from_trustee_json

        evidence = evidence_from_trustee_json(data)
        if evidence.platform != platform:
            raise ConfigError("evidence is for another platform", expected=platform,
                              found=evidence.platform)
        return evidence
    return load_evidence(data, platform)


def _with_certs(evidence: Evidence, paths: list[Path]) -> Evidence:
    if not paths:
        return evidence
    bundle = b"".join(_as_pem(_read(path)) for path in paths)
    return dataclasses.replace(evidence, endorsements={**evidence.endorsements,
                                                       "cert_chain": bundle})


def _with_collateral(evidence: Evidence, source: Path | None, *, offline: bool,
                     at: datetime) -> Evidence:
    """SNP evidence without a VCEK/VLEK gets it from the cache, a bundle, or AMD KDS."""
    if evidence.platform != "snp" or {"vcek", "vlek", "auxblob"} & set(evidence.endorsements):
        return evidence
    if "cert_chain" in evidence.endorsements:
        return evidence  # --certs gave the certificates (a VCEK may be in the bundle)
    if source is None and not offline:
        return evidence  # the verifier explains what is missing and where to get it
    from .collateral import CollateralCache
    from .platforms.snp.abi import parse_report
    from .platforms.snp.kds import KdsClient

    cache = _cache_from(source) if source is not None else CollateralCache(None)
    report = parse_report(evidence.report)
    products = [report.product] if report.product else ["Milan", "Genoa", "Turin"]
    misses: list[CCAttestError] = []
    with KdsClient(cache=cache, offline=offline) as client:
        for product in products:  # version 2 reports do not say which product they are
            try:
                found = client.collateral_for(report, product=product, at=at)
            except (CollateralUnavailable, ConfigError) as error:
                misses.append(error)
                continue
            with contextlib.suppress(CollateralUnavailable, ConfigError):  # a claim, not a must
                found["crl"] = client.crl(product, report.signing_key, at=at)
            return dataclasses.replace(evidence,
                                       endorsements={**evidence.endorsements, **found})
    raise next((e for e in misses if isinstance(e, CollateralUnavailable)), misses[0])


@collateral_app.command("fetch")
def collateral_fetch(
    reports: Annotated[list[Path], typer.Argument(
        metavar="REPORT...", help="SNP reports, TDX quotes or GPU reports (raw, hex, base64).")],
    platform: Annotated[str, typer.Option(
        help="snp (AMD KDS), tdx (Intel PCS) or nvgpu (NVIDIA RIM service).")] = "snp",
    gpu_arch: Annotated[str | None, typer.Option(
        "--gpu-arch", help="nvgpu: hopper or blackwell (names the driver RIM).")] = None,
    cache: CacheOption = DEFAULT_CACHE,
    product: Annotated[str | None, typer.Option(
        help="SNP: Milan, Genoa or Turin (needed for version 2 reports).")] = None,
    crl: Annotated[bool, typer.Option(help="SNP: also fetch the CRL.")] = False,
    url: Annotated[str | None, typer.Option(
        "--url", "--kds", help="Service base URL (AMD KDS, Intel PCS or a PCCS).")] = None,
) -> None:
    """Fetch the collateral these reports need into the cache (then `export` it)."""
    from .collateral import CollateralCache
    from .encoding import decode_blob

    try:
        blobs = [decode_blob(_read(path)) for path in reports]
        store = CollateralCache(cache.expanduser())
        if platform == "snp":
            from .collateral.bundle import fetch_for_reports
            from .platforms.snp.kds import KDS_URL, KdsClient

            with KdsClient(url or KDS_URL, cache=store) as client:
                count = fetch_for_reports(client, blobs, product=product, crl=crl)
        elif platform == "tdx":
            from .platforms.tdx import PCS_URL
            from .platforms.tdx.pcs import PcsClient
            from .platforms.tdx.verify import collateral_request

            wanted = {collateral_request(blob) for blob in blobs}
            with PcsClient(url or PCS_URL, cache=store) as client:
                for fmspc, ca in sorted(wanted):
                    client.collateral(bytes.fromhex(fmspc), ca)
            count = len(wanted)
        elif platform == "nvgpu":
            from .platforms.nvgpu.abi import parse_report as parse_gpu_report
            from .platforms.nvgpu.rim import rim_ids
            from .platforms.nvgpu.rimservice import RimClient

            wanted = set()
            for blob in blobs:
                fields = parse_gpu_report(blob).fields
                ids = rim_ids(driver_version=fields.driver_version,
                              vbios_version=fields.vbios_version, project=fields.project,
                              project_sku=fields.project_sku, chip_sku=fields.chip_sku,
                              arch=gpu_arch or "hopper", chip_info=fields.chip_info)
                wanted |= {ids.driver, ids.vbios}
            with RimClient(*([url] if url else []), cache=store) as client:
                for rim_id in sorted(wanted):
                    client.rim(rim_id, at=utcnow())
            count = len(wanted)
        else:
            raise ConfigError(f"no collateral service for {platform}",
                              expected="snp, tdx or nvgpu")
    except CCAttestError as error:
        _fail(error)
    out.print(f"collateral for {len(reports)} report(s) ({count} sets/items) is in {cache}")


@collateral_app.command("export")
def collateral_export(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="File to write.")],
    cache: CacheOption = DEFAULT_CACHE,
) -> None:
    """Write the cache's valid items to one bundle file for an air-gapped site."""
    from .collateral import CollateralCache
    from .collateral.bundle import export_bundle

    try:
        items = export_bundle(CollateralCache(cache.expanduser()), bundle, valid_at=utcnow())
    except CCAttestError as error:
        _fail(error)
    out.print(f"wrote {len(items)} items to {bundle}")


@collateral_app.command("import")
def collateral_import(
    bundle: Annotated[Path, typer.Argument(metavar="BUNDLE", help="Bundle to read.")],
    cache: CacheOption = DEFAULT_CACHE,
) -> None:
    """Check a bundle (digests, parseable items) and add it to the cache."""
    from .collateral import CollateralCache
    from .collateral.bundle import import_bundle

    try:
        items = import_bundle(CollateralCache(cache.expanduser()), bundle)
    except CCAttestError as error:
        _fail(error)
    out.print(f"imported {len(items)} items into {cache}")


def _as_pem(data: bytes) -> bytes:
    if b"-----BEGIN" in data:
        return data if data.endswith(b"\n") else data + b"\n"
    body = base64.encodebytes(data).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return ("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines)
            + "\n-----END CERTIFICATE-----\n").encode()


@dataclasses.dataclass(frozen=True)
class _Sources:
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


def _verifier(evidence: Evidence, sources: _Sources) -> Verifier:
    platform = evidence.platform
    if platform == "software":
        root = sources.root
        roots = [load_certificate(root)] if root else [KeyDir(sources.key_dir).root_certificate()]
        return SoftwareVerifier(roots)
    if platform == "snp":
        from .platforms.snp.verify import SnpVerifier

        return SnpVerifier()
    if platform == "tdx":
        return _tdx_verifier(evidence, sources)
    if platform == "nvgpu":
        return _nvgpu_verifier(sources)
    if platform in ("azure-snp", "azure-tdx"):
        from .platforms.azure.vtpm import AzureCvmVerifier

        return AzureCvmVerifier(platform, tdx_chain_only=sources.tdx_chain_only)
    if platform == "maa":
        from .platforms.azure.maa import JwksClient, MaaVerifier

        if not sources.instances:
            raise ConfigError("MAA tokens are accepted only from instances you name",
                              hint="pass --instance https://<name>.attest.azure.net")
        if sources.jwks is not None:
            return MaaVerifier(instances=sources.instances, jwks=sources.jwks,
                               allow_unbound=sources.allow_unbound)
        clients = [JwksClient(instance, cache=_cache_from(sources.collateral))
                   for instance in sources.instances]
        return MaaVerifier(instances=sources.instances, client=clients,
                           allow_unbound=sources.allow_unbound)
    if platform == "nvgpu-nras":
        from .platforms.nvgpu.nras import NrasVerifier

        if sources.jwks is None:
            raise ConfigError("NRAS results need NRAS's JWKS", hint="pass --jwks FILE")
        return NrasVerifier(sources.jwks, allow_unbound=sources.allow_unbound)
    if platform == "ita":
        from .platforms.ita.verify import ItaVerifier, load_roots

        if sources.jwks is None or sources.root is None:
            raise ConfigError("ITA tokens need the issuer's JWKS and a root to trust",
                              hint="pass --jwks FILE and --root PEM")
        return ItaVerifier(sources.jwks, roots=load_roots(sources.root),
                           allow_unbound=sources.allow_unbound)
    raise ConfigError(f"verifying {platform} evidence is not supported yet",
                      expected="software, snp, tdx, ita, nvgpu or nvgpu-nras")


def _nvgpu_verifier(sources: _Sources) -> Verifier:
    """RIMs from --rim files, else from the collateral cache (or NVIDIA's RIM service when
    online); without either, the comparison is left out and the policy says so."""
    from .platforms.nvgpu.rimcheck import RimCheck
    from .platforms.nvgpu.rimservice import RimClient
    from .platforms.nvgpu.verify import NvgpuVerifier

    client = None
    if sources.collateral is not None or not sources.offline:
        client = RimClient(cache=_cache_from(sources.collateral), offline=sources.offline)
    if not sources.rims and client is None:
        return NvgpuVerifier()
    return NvgpuVerifier(rim=RimCheck([_read(path) for path in sources.rims], client=client))


def _tdx_verifier(evidence: Evidence, sources: _Sources) -> Verifier:
    from .platforms.tdx.collateral_json import collateral_from_json
    from .platforms.tdx.pcs import PcsClient, collateral_from_path
    from .platforms.tdx.verify import TdxVerifier, collateral_request

    section = sources.policy.tdx
    allow_expired = section is not None and section.expired_collateral == "warn"
    source = sources.collateral
    if source is not None and (source / "tcb_info.json").is_file():
        collateral = collateral_from_path(source)  # a folder written by PCS tools or by us
    elif source is not None and source.is_file() and _is_dcap_collateral(_read(source)):
        collateral = collateral_from_json(_read(source), source=str(source))
    elif source is None and "collateral" in evidence.endorsements:
        collateral = None  # the evidence carries it
    else:  # a cache folder, an offline bundle, or (online) Intel PCS
        fmspc, ca = collateral_request(evidence.report)
        with PcsClient(cache=_cache_from(source), offline=sources.offline) as client:
            collateral = client.collateral(bytes.fromhex(fmspc), ca, at=sources.at)
    return TdxVerifier(collateral, allow_expired_collateral=allow_expired)


def _is_dcap_collateral(data: bytes) -> bool:
    """The JSON shape of dcap-qvl's samples (a flat object with tcb_info), not a bundle."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and "tcb_info" in document


def _cache_from(source: Path | None) -> Any:
    """A collateral cache: the folder given, a bundle loaded into memory, or the default."""
    from .collateral import CollateralCache
    from .collateral.bundle import import_bundle

    if source is not None and source.is_file():
        cache = CollateralCache(None)
        import_bundle(cache, source)
        return cache
    return CollateralCache((source or DEFAULT_CACHE).expanduser())


def _expected_report_data(nonce: str | None, report_data: str | None, identity: str | None,
                          context: str, *, optional: bool = False, platform: str = ""
                          ) -> bytes | None:
    if optional and nonce is None and report_data is None:
        return None  # the verifier records that no binding was checked
    if (nonce is None) == (report_data is None):
        raise ConfigError("give exactly one of --nonce and --report-data")
    if report_data is not None:
        return _hex(report_data, "--report-data")
    if platform in ("nvgpu", "nvgpu-nras", "azure-snp", "azure-tdx") and not identity:
        # A bare GPU report, an NRAS result or a vTPM quote names no attester: the nonce is
        # the raw value that went to the GPU or into the quote's extraData.
        return _hex(nonce or "", "--nonce")
    if not identity:
        raise ConfigError("the evidence names no attester",
                          hint="pass --identity (the name the attester bound) or --report-data")
    size = report_data_size(platform)
    return bind(_hex(nonce or "", "--nonce"), identity, context, size=size)


def _write_ear(path: Path, result: AttestationResult, key_dir: Path, report_data: bytes,
               when: datetime) -> None:
    from .tokens import load_or_create_signing_key, sign_results

    key = load_or_create_signing_key(Path(key_dir).expanduser() / "verifier.key.pem")
    path.write_text(sign_results([result], key, issued_at=when, nonce=report_data) + "\n")
    err.print(f"wrote signed result to {path} (kid {key.kid})")


@app.command("platforms")
def list_platforms() -> None:
    """List the evidence platforms this build knows."""
    for entry in registered_platforms().values():
        out.print(f"[bold]{entry.name}[/bold]  {entry.summary}")


@policy_app.command("init")
def policy_init(
    platform: Annotated[list[str] | None, typer.Option(
        help="Add a section for this platform (repeatable).")] = None,
    measurement: Annotated[list[str] | None, typer.Option(
        help="Reference measurement to allow, hex (repeatable).")] = None,
) -> None:
    """Print a commented starter policy."""
    try:
        sys.stdout.write(starter_policy(platform or [], measurement or []))
    except CCAttestError as error:
        _fail(error)


@policy_app.command("check")
def policy_check(path: Annotated[Path, typer.Argument(metavar="FILE")]) -> None:
    """Validate a policy file; errors name the key and the line."""
    try:
        loaded = load_policy(path)
    except CCAttestError as error:
        _fail(error)
    sections = loaded.sections()
    out.print(f"[green]ok[/green]: {path} (policy id {loaded.id}; platform sections: "
              f"{', '.join(sections) or 'none'})")


@token_app.command("verify")
def token_verify(
    token: Annotated[str, typer.Argument(metavar="TOKEN", help="The JWT, or a file holding it.")],
    jwks_file: Annotated[Path, typer.Option("--jwks", help="JWKS file of trusted keys.")],
    audience: Annotated[str | None, typer.Option(help="Required audience.")] = None,
    nonce: Annotated[str | None, typer.Option(help="Required eat_nonce, hex.")] = None,
    at: AtOption = None,
) -> None:
    """Verify a signed attestation result (EAR JWT) and print its claims."""
    from .tokens import load_jwks, verify_token

    try:
        text = _read(Path(token)).decode().strip() if _is_file(token) else token
        claims = verify_token(text, load_jwks(jwks_file), at=_at(at), audience=audience,
                              nonce=_hex(nonce, "--nonce") if nonce else None)
    except CCAttestError as error:
        _fail(error)
    sys.stdout.write(json.dumps(claims, indent=2) + "\n")


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # a JWT is often longer than a file name may be
        return False


@token_app.command("jwks")
def token_jwks(key_dir: KeyDirOption = DEFAULT_KEY_DIR) -> None:
    """Print the JWKS of this verifier's result-signing key (created on first use)."""
    from .tokens import jwks, load_or_create_signing_key

    try:
        key = load_or_create_signing_key(Path(key_dir).expanduser() / "verifier.key.pem")
    except CCAttestError as error:
        _fail(error)
    sys.stdout.write(json.dumps(jwks([key]), indent=2) + "\n")


@nvflare_app.command("configure")
def nvflare_configure(
    kits: Annotated[list[Path] | None, typer.Argument(
        metavar="KIT...", help="Server and client startup kits (folders with startup/).")] = None,
    poc: Annotated[Path | None, typer.Option(
        help="A POC or provisioned prod folder: configure every server and client kit in it.")
    ] = None,
    not_cc: Annotated[list[str] | None, typer.Option(
        "--not-cc", help="A site that is not CC-enabled (repeatable).")] = None,
    round_interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = 60.0,
    round_deadline: Annotated[float, typer.Option(help="Seconds a round may take.")] = 30.0,
    on_rejected: Annotated[str, typer.Option(
        help="alert | exclude_site | stop_jobs | shutdown")] = "exclude_site",
    on_unreachable: Annotated[str, typer.Option(
        help="alert | exclude_site | stop_jobs | shutdown")] = "exclude_site",
    grace: Annotated[float, typer.Option(
        help="Seconds an unreachable site gets before its action.")] = 60.0,
    root_dir: Annotated[Path | None, typer.Option(
        help="Where the federation's development root key lives (never inside a kit).")] = None,
) -> None:
    """Add ccattest to existing NVFlare startup kits (or a POC workspace)."""
    from .mesh.actions import ActionConfig
    from .mesh.config import RoundsConfig
    from .nvflare.kits import configure_kits, find_kit
    from .provisioning import FederationRequest, SiteRequest

    try:
        paths = list(kits or [])
        if poc is not None:
            paths += sorted(p for p in poc.iterdir() if (p / "startup").is_dir())
        found = []
        for path in paths:
            try:
                found.append(find_kit(path))
            except ConfigError:
                if poc is None:
                    raise  # an explicitly named folder must be a kit; POC also holds admins
        if not found:
            raise ConfigError("no server or client startup kit found", hint="pass KIT... or --poc")
        skip = set(not_cc or [])
        request = FederationRequest(
            [SiteRequest(kit.name, kit.name not in skip) for kit in found],
            rounds=RoundsConfig(interval_seconds=round_interval, deadline_seconds=round_deadline),
            actions=ActionConfig(on_rejected=on_rejected, on_unreachable=on_unreachable,
                                 unreachable_grace_seconds=grace))
        root = root_dir or found[0].path.parent / ".ccattest-root"
        references = configure_kits(found, request, root, utcnow())
    except CCAttestError as error:
        _fail(error)
    except ValueError as error:  # pydantic: an unknown action name
        _fail(ConfigError("invalid option", found=str(error).splitlines()[0]))
    for kit in found:
        measurement = references.get(kit.name, "not CC-enabled")
        out.print(f"[bold]{kit.name}[/bold] ({kit.role}): {kit.local / 'cc'}  "
                  f"measurement {measurement[:16]}")
    out.print(f"development root key: {root}")


@app.command()
def demo(
    work_dir: Annotated[Path, typer.Option(help="Where the demo keeps its keys and files.")] =
    Path(".demo"),
    local: Annotated[bool, typer.Option(
        "--local", help="Without NVFlare: three software sites attest in-process.")] = False,
) -> None:
    """A three-site NVFlare federation on software TEEs: mutual attestation, live rounds,
    a job, then a tampered site and the configured action."""
    try:
        if local:
            from .demo import run_demo

            ok = run_demo(work_dir, out) == 1  # exactly the tampered site is refused
        else:
            ok = _federation_demo(work_dir)
    except CCAttestError as error:
        _fail(error)
    except TimeoutError as error:
        err.print(f"[red]demo stalled[/red]: {error}")
        raise typer.Exit(EXIT_REJECTED) from None
    except (RuntimeError, OSError) as error:  # how NVFlare's admin API reports failures
        err.print(f"[red]demo failed[/red]: {type(error).__name__}: {error}")
        raise typer.Exit(EXIT_REJECTED) from None
    raise typer.Exit(EXIT_OK if ok else EXIT_REJECTED)


def _federation_demo(work_dir: Path) -> bool:
    try:
        from .nvflare.demo import run_federation_demo
    except ImportError:
        raise PlatformUnavailable("NVFlare is not installed",
                                  hint="pip install 'ccattest[nvflare]', or run "
                                  "`ccattest demo --local`") from None
    import shutil

    shutil.rmtree(work_dir, ignore_errors=True)
    return run_federation_demo(work_dir, out)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
