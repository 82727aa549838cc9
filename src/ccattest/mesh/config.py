"""A site's CC configuration (`cc_config.yaml`, written at provisioning) and the agent it
builds. Paths are relative to the file. A site with no `collect` section is not CC-enabled.

    site: site-1
    policy: policy.yaml
    collect:
      software: {key_dir: keys, svn: 0, measure: [app/train.py], settings: {job: fedavg}}
    verify:
      software: {roots: [software-root.pem]}
    roster:
      require_all_cc: false
      sites: {server: {platforms: [software]}, site-3: {cc_enabled: false}}
    rounds: {interval_seconds: 60, jitter: 0.1, deadline_seconds: 30}
    actions: {on_rejected: exclude_site, on_unreachable: exclude_site}
    record: {federation: f3a9c1, url: null, required: false}   (mesh/recording.py)
    console: {host: 127.0.0.1, port: 8765}   (the server only: the dashboard in-process)
    seal: {mode: on, suite: mlkem768-x25519}   (models sealed to attested keys: seal/)

`verify.snp` and `verify.tdx` take a collateral source, as `ccattest verify` does:
`collateral` (a cache folder from `ccattest collateral fetch`, or a bundle file from
`ccattest collateral export`; for TDX also a folder of PCS answers or a dcap-qvl JSON
file, used as it is), `offline` (default true: never ask a service) and `kds_url` /
`pcs_url` (a PCCS or mirror; only with `offline: false`). SNP evidence that carries its
certificates, and TDX with neither `collateral` nor `offline: false`, are verified as before.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..collateral.http import check_service_url
from ..collateral.sources import CollateralSource, open_cache
from ..errors import ConfigError
from ..platforms.software.collect import LiveSoftwareAttester
from ..platforms.software.measure import MeasuredItem, measure_file, measure_setting
from ..platforms.software.pki import SiteCredentials, load_certificate, load_private_key
from ..platforms.software.verify import SoftwareVerifier
from ..policy import load_policy
from ..seal.keys import DEFAULT_SUITE, SealingKeys, SuiteName
from ..timeutil import utcnow
from .actions import ActionConfig
from .agent import SiteAgent
from .roster import Roster
from .telemetry import Telemetry


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SoftwareCollect(_Strict):
    key_dir: str
    svn: int = Field(default=0, ge=0, lt=2**32)
    measure: list[str] = Field(default_factory=list)
    settings: dict[str, str] = Field(default_factory=dict)


class SoftwareVerify(_Strict):
    roots: list[str] = Field(min_length=1)


class SnpCollect(_Strict):
    tsm_root: str = "/sys/kernel/config/tsm/report"
    sev_guest: str = "/dev/sev-guest"
    vmpl: int = Field(default=0, ge=0, le=3)


class _CollateralSourced(_Strict):
    """A collateral source (see the module's docstring). Offline by default: a site asks a
    vendor service only when its operator says so."""

    collateral: str | None = Field(default=None, min_length=1)  # relative to the config
    offline: bool = True
    _service: ClassVar[tuple[str, str, str]]  # (key, service, example URL)

    @model_validator(mode="after")
    def _url_needs_online(self) -> _CollateralSourced:
        key, service, _ = self._service
        if getattr(self, key) is not None and self.offline:
            raise ValueError(f"{key} names a {service} to ask, but offline is true (the "
                             "default): set offline: false, or remove " + key)
        return self

    @property
    def url(self) -> str | None:
        return getattr(self, self._service[0])


def _service_url(value: str | None, service: str, example: str) -> str | None:
    if value is None:
        return None
    try:
        return check_service_url(value, service, example)
    except ConfigError as error:
        raise ValueError(str(error)) from None


class SnpVerify(_CollateralSourced):
    allow_missing_crl: bool = True
    kds_url: str | None = None  # else AMD KDS
    _service = ("kds_url", "KDS", "https://kdsintf.amd.com")

    @field_validator("kds_url")
    @classmethod
    def _kds_url(cls, value: str | None) -> str | None:
        return _service_url(value, "KDS", cls._service[2])


class TdxCollect(_Strict):
    tsm_root: str = "/sys/kernel/config/tsm/report"


class TdxVerify(_CollateralSourced):
    allow_expired_collateral: bool = False
    pcs_url: str | None = None  # else Intel PCS
    _service = ("pcs_url", "PCS", "https://api.trustedservices.intel.com")

    @field_validator("pcs_url")
    @classmethod
    def _pcs_url(cls, value: str | None) -> str | None:
        return _service_url(value, "PCS", cls._service[2])


class NvgpuCollect(_Strict):
    pass  # NVML finds the GPUs; CC mode must be on


class NvgpuVerify(_Strict):
    rims: list[str] = Field(default_factory=list)  # RIM files, relative to the config
    rim_cache: str | None = None  # else RIMs come only from `rims`
    offline: bool = True  # fetch missing RIMs from NVIDIA only when set to false


class AzureCvmCollect(_Strict):
    tpm_device: str = "/dev/tpmrm0"
    nv_index: int = 0x01400001


class AciCollect(_Strict):
    sidecar: str = "http://localhost:8284"
    maa_endpoint: str


class MaaVerify(_Strict):
    instances: list[str] = Field(min_length=1)
    jwks: str | None = None  # offline keys, relative to the config; else fetched (jku)


class CollectConfig(_Strict):
    software: SoftwareCollect | None = None
    snp: SnpCollect | None = None
    tdx: TdxCollect | None = None
    nvgpu: NvgpuCollect | None = None
    azure_cvm: AzureCvmCollect | None = None
    aci: AciCollect | None = None


class VerifyConfig(_Strict):
    software: SoftwareVerify | None = None
    snp: SnpVerify | None = None
    tdx: TdxVerify | None = None
    nvgpu: NvgpuVerify | None = None
    azure_cvm: bool = False  # verify azure-snp / azure-tdx evidence (TDX with verify.tdx)
    maa: MaaVerify | None = None


class RosterEntry(_Strict):
    cc_enabled: bool = True
    platforms: list[str] = Field(default_factory=lambda: ["software"])


class RosterConfig(_Strict):
    require_all_cc: bool = False
    sites: dict[str, RosterEntry] = Field(default_factory=dict)


class RoundsConfig(_Strict):
    interval_seconds: float = Field(default=60.0, gt=0)
    jitter: float = Field(default=0.1, ge=0, lt=1)
    deadline_seconds: float = Field(default=30.0, gt=0)
    registration_window_seconds: float = Field(default=120.0, gt=0)
    request_timeout_seconds: float = Field(default=10.0, gt=0)


class RecordConfig(_Strict):
    """The site's record (mesh/recording.py). Paths are relative to the config."""

    federation: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    url: str | None = None  # a database URL (postgresql://.../db_{site}); else SQLite
    required: bool = False  # a failing record blocks jobs (else it is an alert)
    checkpoint_every: int = Field(default=64, ge=1, le=1_000_000)
    keep_evidence: bool = False  # also keep each evidence blob, once per digest
    keys: str = "federation.jwks.json"  # every site's public keys (the federation's JWKS)
    key_dir: str = "keys"  # record-log.key, record-witness.key, result.key.pem
    receipt_cosign_seconds: float = Field(default=10.0, gt=0, le=300)


class ConsoleConfig(_Strict):
    """The federation console (`ccattest serve`) started by the server's CC manager over
    its own kit; the token goes to local/cc/console.token. Anything but a loopback host
    exposes it to the network: say so on purpose."""

    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8765, ge=1, le=65535)
    client_certs: bool = False  # HTTPS admitting certificates from the kit's rootCA.pem


class SealMode(StrEnum):
    OFF = "off"  # models travel over NVFlare's TLS only
    ON = "on"  # sealed to attested keys between CC sites; non-CC sites get them in clear
    REQUIRED = "required"  # as on, and a job a non-CC site takes part in is refused


class SealConfig(_Strict):
    """Models sealed to attested keys (seal/, nvflare/sealing.py); one value a federation."""

    mode: SealMode = SealMode.OFF
    suite: SuiteName = DEFAULT_SUITE  # mlkem768-x25519: post-quantum hybrid (seal/keys.py)
    rotate_seconds: float | None = Field(default=86400.0, gt=0)  # also a new key each start
    grace_seconds: float = Field(default=300.0, ge=0)  # the old key still opens, after one


class CCConfig(_Strict):
    site: str
    policy: str
    collect: CollectConfig = Field(default_factory=CollectConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    roster: RosterConfig = Field(default_factory=RosterConfig)
    rounds: RoundsConfig = Field(default_factory=RoundsConfig)
    actions: ActionConfig = Field(default_factory=ActionConfig)
    record: RecordConfig | None = None
    console: ConsoleConfig | None = None
    seal: SealConfig = Field(default_factory=SealConfig)


def load_cc_config(path: Path | str) -> tuple[CCConfig, Path]:
    """The config and the folder its relative paths start from."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read CC config {path}", found=str(exc)) from None
    try:
        return CCConfig.model_validate(data), path.parent
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors())
        raise ConfigError(f"{path}: invalid CC config", found=problems) from None


def roster_of(config: CCConfig) -> Roster:
    sites = {name: entry.model_dump() for name, entry in config.roster.sites.items()}
    return Roster.from_mapping(sites, require_all_cc=config.roster.require_all_cc)


def software_attester(site: str, spec: SoftwareCollect, base: Path) -> LiveSoftwareAttester:
    key_dir = base / spec.key_dir
    credentials = SiteCredentials(site, load_certificate(key_dir / "site.pem"),
                                  load_private_key(key_dir / "site.key.pem"))

    def measure() -> list[MeasuredItem]:
        items = [measure_file(base / name, name) for name in spec.measure]
        return items + [measure_setting(k, v) for k, v in sorted(spec.settings.items())]

    return LiveSoftwareAttester(credentials, measure, svn=spec.svn)


def _collateral_path(spec: _CollateralSourced, base: Path) -> Path | None:
    return None if spec.collateral is None else base / Path(spec.collateral).expanduser()


def _named(key: str, error: ConfigError) -> ConfigError:
    return ConfigError(f"{key}: {error.message}", expected=error.expected, found=error.found,
                       hint=error.hint)


def _collateral_source(spec: _CollateralSourced, section: str, base: Path,
                       telemetry: Telemetry | None = None) -> CollateralSource | None:
    """Where to look collateral up; None where nothing is to be looked up (no `collateral`
    and offline). Checked now, so that a bad setting stops the site at start, not at its
    first verification."""
    key, path = f"verify.{section}.collateral", _collateral_path(spec, base)
    if path is None:
        return None if spec.offline else CollateralSource(
            open_cache(None, telemetry=telemetry), offline=False, url=spec.url)
    if not path.exists() and spec.offline:
        raise ConfigError(f"{key}: cannot read {section.upper()} collateral {path}",
                          expected="a cache folder (ccattest collateral fetch) or a bundle "
                                   "file (ccattest collateral export)",
                          found="no such file or folder",
                          hint="import a bundle there, or set offline: false to fetch")
    try:  # a bundle is checked whole here; a folder when read
        cache = open_cache(path, telemetry=telemetry)
    except ConfigError as error:
        raise _named(key, error) from None
    _held(cache)
    return CollateralSource(cache, offline=spec.offline, url=spec.url)


def _held(cache: Any) -> None:
    """With telemetry, read the cache folder once now, so that the expiry of what it holds
    shows before the first lookup (items then report themselves as they change)."""
    if cache.telemetry is not None:
        cache.items()


def _snp_verifier(spec: SnpVerify, base: Path, telemetry: Telemetry | None = None) -> Any:
    """Certificates from the evidence (the host's table); for evidence without them, the
    VCEK and chain from the collateral source, when one is configured."""
    from ..collateral.sources import SnpLookupVerifier
    from ..platforms.snp.verify import SnpVerifier

    verifier = SnpVerifier(allow_missing_crl=spec.allow_missing_crl)
    source = _collateral_source(spec, "snp", base, telemetry)
    return verifier if source is None else SnpLookupVerifier(verifier, source)


def _tdx_verifier(spec: TdxVerify, base: Path, telemetry: Telemetry | None = None) -> Any:
    """Fixed collateral (a PCS folder or a dcap-qvl JSON file); else collateral looked up
    per quote (FMSPC) in the cache, bundle or PCS; with neither, peers must attach it to
    their evidence (endorsement "collateral")."""
    from ..collateral.sources import TdxLookupVerifier, tdx_fixed_collateral
    from ..platforms.tdx.verify import TdxVerifier

    allow_expired = spec.allow_expired_collateral
    path = _collateral_path(spec, base)
    if path is not None and path.exists():
        try:
            fixed = tdx_fixed_collateral(path)
            if fixed is not None:
                return TdxVerifier(fixed, allow_expired_collateral=allow_expired)
        except ConfigError as error:
            raise _named("verify.tdx.collateral", error) from None
    source = _collateral_source(spec, "tdx", base, telemetry)
    if source is None:
        return TdxVerifier(None, allow_expired_collateral=allow_expired)
    return TdxLookupVerifier(source, allow_expired_collateral=allow_expired)


def _nvgpu_verifier(spec: NvgpuVerify, base: Path, telemetry: Telemetry | None = None
                    ) -> Any:
    from ..collateral import CollateralCache
    from ..platforms.nvgpu.rimcheck import RimCheck
    from ..platforms.nvgpu.rimservice import RimClient
    from ..platforms.nvgpu.verify import NvgpuVerifier

    files = []
    for name in spec.rims:
        try:
            files.append((base / name).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read RIM {base / name}", found=str(exc)) from None
    client = None
    if spec.rim_cache is not None:
        cache = CollateralCache(base / spec.rim_cache, telemetry=telemetry)
        _held(cache)
        client = RimClient(cache=cache, offline=spec.offline)
    return NvgpuVerifier(rim=RimCheck(files, client=client))


def _azure_attesters(collect: CollectConfig) -> list[Any]:
    attesters: list[Any] = []
    if collect.azure_cvm is not None:
        from ..platforms.azure.vtpm import AzureCvmAttester

        attesters.append(AzureCvmAttester(tpm_device=Path(collect.azure_cvm.tpm_device),
                                          nv_index=collect.azure_cvm.nv_index))
    if collect.aci is not None:
        from ..platforms.azure.aci import AciAttester

        attesters.append(AciAttester(collect.aci.sidecar, collect.aci.maa_endpoint))
    return attesters


def _azure_verifiers(spec: VerifyConfig, tdx: Any, base: Path) -> dict[str, Any]:
    verifiers: dict[str, Any] = {}
    if spec.azure_cvm:
        from ..platforms.azure.vtpm import AzureCvmVerifier

        verifiers["azure-snp"] = AzureCvmVerifier("azure-snp")
        verifiers["azure-tdx"] = AzureCvmVerifier("azure-tdx", tdx_verifier=tdx)
    if spec.maa is not None:
        from ..platforms.azure.maa import JwksClient, MaaVerifier

        if spec.maa.jwks is not None:
            verifiers["maa"] = MaaVerifier(instances=spec.maa.instances,
                                           jwks=base / spec.maa.jwks)
        else:
            verifiers["maa"] = MaaVerifier(instances=spec.maa.instances,
                                           client=[JwksClient(i) for i in spec.maa.instances])
    return verifiers


def _pinned(telemetry: Telemetry, roots: list[Any], tdx: Any) -> None:
    """Tell telemetry when the collateral pinned in the config expires: the software roots
    and fixed TDX collateral (cached items report themselves). It only informs: what does
    not parse here is left to the verifier to refuse."""
    from cryptography.x509.oid import NameOID

    for root in roots:
        names = root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else f"serial {root.serial_number:x}"
        telemetry.collateral_held("software.root", (name,), root.not_valid_after_utc)
    fixed = getattr(tdx, "collateral", None)
    if fixed is None:
        return
    from ..errors import CCAttestError
    from ..platforms.tdx import pcs

    windows = {
        "tdx.tcb_info": lambda: pcs.tcb_info_window(fixed.tcb_info),
        "tdx.qe_identity": lambda: pcs.qe_identity_window(fixed.qe_identity),
        "tdx.pck_crl": lambda: pcs.crl_window(pcs.crl_bytes(fixed.pck_crl),
                                              pcs.CAS.values())[0],
        "tdx.root_ca_crl": lambda: pcs.crl_window(pcs.crl_bytes(fixed.root_ca_crl),
                                                  [pcs.ROOT_CA])[0],
    }
    for kind, window in windows.items():
        try:
            telemetry.collateral_held(kind, (fixed.source,), window().not_after)
        except CCAttestError:
            continue


def build_agent(config: CCConfig, base: Path, telemetry: Telemetry | None = None
                ) -> SiteAgent:
    attesters: list[Any] = []
    if config.collect.software is not None:
        attesters.append(software_attester(config.site, config.collect.software, base))
    if config.collect.snp is not None:
        from ..platforms.snp.collect import SnpAttester

        snp = config.collect.snp
        attesters.append(SnpAttester(Path(snp.tsm_root), Path(snp.sev_guest), vmpl=snp.vmpl))
    if config.collect.tdx is not None:
        from ..platforms.tdx.collect import TdxAttester

        attesters.append(TdxAttester(Path(config.collect.tdx.tsm_root)))
    if config.collect.nvgpu is not None:
        from ..platforms.nvgpu.collect import NvgpuAttester

        attesters.append(NvgpuAttester())
    attesters += _azure_attesters(config.collect)
    verifiers: dict[str, Any] = {}
    roots = []
    if config.verify.software is not None:
        roots = [load_certificate(base / root) for root in config.verify.software.roots]
        verifiers["software"] = SoftwareVerifier(roots)
    if config.verify.snp is not None:
        verifiers["snp"] = _snp_verifier(config.verify.snp, base, telemetry)
    if config.verify.tdx is not None:
        verifiers["tdx"] = _tdx_verifier(config.verify.tdx, base, telemetry)
    if config.verify.nvgpu is not None:
        verifiers["nvgpu"] = _nvgpu_verifier(config.verify.nvgpu, base, telemetry)
    # Azure TDX CVMs take fixed collateral only (a TdxVerifier), else the chain alone.
    tdx = verifiers.get("tdx")
    verifiers.update(_azure_verifiers(config.verify, tdx if hasattr(tdx, "collateral") else None,
                                      base))
    if telemetry is not None:
        _pinned(telemetry, roots, verifiers.get("tdx"))
    return SiteAgent(config.site, attesters, verifiers, load_policy(base / config.policy),
                     roster_of(config), telemetry=telemetry,
                     sealing=sealing_keys(config.seal) if attesters else None)


def sealing_keys(seal: SealConfig) -> SealingKeys | None:
    """This process's sealing key (made now, in memory only), when sealing is on."""
    if seal.mode is SealMode.OFF:
        return None
    rotate = timedelta(seconds=seal.rotate_seconds) if seal.rotate_seconds else None
    return SealingKeys(seal.suite, utcnow(), rotate=rotate,
                       grace=timedelta(seconds=seal.grace_seconds))
