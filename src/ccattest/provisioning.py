"""Write each site's CC bundle: keys, the federation's software root, a policy holding every
CC site's reference measurement, and cc_config.yaml. NVFlare-free: the NVFlare provision
builder and `ccattest nvflare configure` both call it.

Bundle layout (a folder per site, e.g. <startup kit>/local/cc):
    cc_config.yaml   policy.yaml   software-root.pem   keys/site.pem   keys/site.key.pem
    workload.txt     the site's declared workload settings, measured at every collection
    federation.jwks.json   every site's public record keys and receipt key (also written
                     beside the provisioning root, for data owners who check receipts)
    keys/record-log.key  keys/record-witness.key  keys/result.key.pem   (mode 0600)

With hardware platforms (`FederationRequest.platforms`) a bundle holds only cc_config.yaml
and a starter policy.yaml: the reference measurements are those of the images the operator
built, which only a known-good site can show (`reference_todo` says what to fill in).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization

from .errors import ConfigError
from .mesh.actions import ActionConfig
from .mesh.config import (
    AciCollect,
    AzureCvmCollect,
    CCConfig,
    MaaVerify,
    NvgpuCollect,
    NvgpuVerify,
    RecordConfig,
    RoundsConfig,
    SnpCollect,
    SnpVerify,
    SoftwareCollect,
    TdxCollect,
    TdxVerify,
    software_attester,
)
from .platforms.software.pki import KeyDir, issue_site
from .record.keys import SiteKeys, merge_jwks
from .tokens import SigningKey

WORKLOAD_FILE = "workload.txt"
JWKS_FILE = "federation.jwks.json"


@dataclass(frozen=True)
class SiteRequest:
    name: str
    cc_enabled: bool = True
    workload: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FederationRequest:
    sites: Sequence[SiteRequest]
    rounds: RoundsConfig = field(default_factory=RoundsConfig)
    actions: ActionConfig = field(default_factory=ActionConfig)
    require_all_cc: bool = False
    platforms: Sequence[str] = ()  # hardware platforms (HARDWARE); empty: the software TEE
    maa_endpoint: str | None = None  # aci: the MAA instance the sidecar asks and peers trust
    federation: str = ""  # names every site's log; empty: a fresh random id
    record_url: str | None = None  # record.url for every site (PostgreSQL); else SQLite
    seal: str = "off"  # seal.mode for every site: off | on | required (seal/, nvflare/sealing.py)


@dataclass(frozen=True)
class HardwarePlatform:
    """What `--platform NAME` sets up in every bundle."""

    evidence: str  # the platform of the evidence a site presents (roster, required_platforms)
    sections: tuple[str, ...]  # the policy sections that judge it
    todo: str  # what the operator must fill in before the policy affirms anyone
    cpu: bool = True  # a CPU TEE: a machine has one; a GPU goes with one


HARDWARE: dict[str, HardwarePlatform] = {
    "snp": HardwarePlatform("snp", ("snp",), "snp.measurements: the launch measurement "
                            "of the guest image you built"),
    "tdx": HardwarePlatform("tdx", ("tdx",), "tdx.mrtd: the measurement of the TD image "
                            "you built"),
    "nvgpu": HardwarePlatform("nvgpu", ("nvgpu",), "nvgpu: nothing to measure (NVIDIA's "
                              "signed RIMs are the reference)", cpu=False),
    "azure-snp": HardwarePlatform("azure-snp", ("snp", "azure"), "snp.measurements: the "
                                  "launch measurement of the CVM image (and azure.pcrs)"),
    "azure-tdx": HardwarePlatform("azure-tdx", ("tdx", "azure"), "tdx.mrtd: the measurement "
                                  "of the CVM image (and azure.pcrs)"),
    "aci": HardwarePlatform("maa", ("azure",), "azure.host_data: the SHA-256 of the "
                            "container group's CCE policy"),
}


def hardware_platforms(request: FederationRequest) -> list[str]:
    """The request's hardware platforms, checked and without repeats."""
    chosen = list(dict.fromkeys(request.platforms))
    unknown = [name for name in chosen if name not in HARDWARE]
    if unknown:
        raise ConfigError(f"unknown hardware platform {', '.join(unknown)}",
                          expected="one of " + ", ".join(HARDWARE))
    cpus = [name for name in chosen if HARDWARE[name].cpu]
    if len(cpus) > 1:
        raise ConfigError("a site runs in one CPU TEE, not several",
                          expected="one of snp, tdx, azure-snp, azure-tdx, aci (plus nvgpu)",
                          found=", ".join(cpus))
    if "aci" in chosen and not request.maa_endpoint:
        raise ConfigError("aci needs the Microsoft Azure Attestation instance",
                          expected="an MAA endpoint, e.g. sharedeus2.eus2.attest.azure.net",
                          hint="pass --maa-endpoint (CCBuilder: maa_endpoint)")
    return chosen


def reference_todo(platforms: Sequence[str]) -> list[str]:
    """What the operator must fill in each site's policy.yaml, one line per platform."""
    return [HARDWARE[name].todo for name in platforms]


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def workload_text(site: SiteRequest) -> str:
    lines = [f"site={site.name}"] + [f"{k}={v}" for k, v in sorted(site.workload.items())]
    return "\n".join(lines) + "\n"


def provision(request: FederationRequest, bundles: Mapping[str, Path], root_dir: Path,
              now: datetime) -> dict[str, str]:
    """Write every site's bundle; returns each CC site's reference measurement (hex), which
    only the software TEE knows at provisioning (hardware: empty)."""
    hardware = hardware_platforms(request)
    record = _provision_record_keys(request, bundles, root_dir)
    if hardware:
        _provision_hardware(request, bundles, hardware, record)
        return {}
    keys = KeyDir(root_dir)
    root = keys.ensure_root(now)
    root_pem = root.certificate.public_bytes(serialization.Encoding.PEM)
    collect = SoftwareCollect(key_dir="keys", measure=[WORKLOAD_FILE])
    references: dict[str, str] = {}
    for site in request.sites:
        bundle = bundles[site.name]
        _write(bundle / "software-root.pem", root_pem)
        _write(bundle / WORKLOAD_FILE, workload_text(site).encode())
        if site.cc_enabled:
            creds = issue_site(root, site.name, now)
            _write(bundle / "keys/site.pem",
                   creds.certificate.public_bytes(serialization.Encoding.PEM))
            _write(bundle / "keys/site.key.pem", creds.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()), private=True)
            references[site.name] = software_attester(site.name, collect, bundle
                                                        ).measurement.hex()
    roster = {s.name: {"cc_enabled": s.cc_enabled, "platforms": ["software"]}
              for s in request.sites}
    for site in request.sites:
        bundle = bundles[site.name]
        _write(bundle / "policy.yaml", _policy(references).encode())
        config = CCConfig(
            site=site.name, policy="policy.yaml",
            collect={"software": collect} if site.cc_enabled else {},
            verify={"software": {"roots": ["software-root.pem"]}},
            roster={"require_all_cc": request.require_all_cc, "sites": roster},
            rounds=request.rounds, actions=request.actions, record=record,
            seal={"mode": request.seal},
        )
        _write(bundle / "cc_config.yaml",
               yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode())
    return references


def _provision_record_keys(request: FederationRequest, bundles: Mapping[str, Path],
                           root_dir: Path) -> RecordConfig:
    """Every site's record keys and receipt key, and the federation's public key set, in
    every bundle and beside the root (what a data owner is given to check receipts)."""
    federation = request.federation or secrets.token_hex(4)
    record = RecordConfig(federation=federation, url=request.record_url)
    public: list[list[dict[str, str]]] = []
    for site in request.sites:
        keys_dir = bundles[site.name] / "keys"
        keys = SiteKeys.generate(federation, site.name)
        keys.write(keys_dir)
        result = SigningKey.generate()
        _write(keys_dir / "result.key.pem", result.to_pem(), private=True)
        public += [keys.public_jwks(), [result.public_jwk()]]
    text = json.dumps(merge_jwks(public), indent=1).encode()
    for site in request.sites:
        _write(bundles[site.name] / JWKS_FILE, text)
    _write(root_dir / JWKS_FILE, text)
    return record


def _policy(references: Mapping[str, str]) -> str:
    body = {
        "version": 1,
        "id": "federation-software-dev",
        "common": {"result_lifetime_seconds": 3600, "required_platforms": ["software"]},
        "software": {"allow": True, "measurements": sorted(set(references.values())),
                     "identities": sorted(references), "min_svn": 0, "allow_debug": False},
    }
    header = ("# Written by ccattest provisioning. DEVELOPMENT ONLY: the software platform\n"
              "# gives no hardware guarantee. One reference measurement per CC site.\n")
    return header + yaml.safe_dump(body, sort_keys=False)


def _hardware_sections(platforms: Sequence[str], maa_endpoint: str | None
                       ) -> tuple[dict[str, object], dict[str, object]]:
    """The collect and verify sections of cc_config.yaml for these platforms."""
    collect: dict[str, object] = {}
    verify: dict[str, object] = {}
    for name in platforms:
        if name == "snp":
            collect["snp"], verify["snp"] = SnpCollect(), SnpVerify()
        elif name == "tdx":
            collect["tdx"], verify["tdx"] = TdxCollect(), TdxVerify()
        elif name == "nvgpu":
            # RIMs are cached next to the config; fetched from NVIDIA when missing, unless
            # the operator sets offline: true and imports a collateral bundle there.
            collect["nvgpu"] = NvgpuCollect()
            verify["nvgpu"] = NvgpuVerify(rim_cache="collateral", offline=False)
        elif name in ("azure-snp", "azure-tdx"):
            collect["azure_cvm"], verify["azure_cvm"] = AzureCvmCollect(), True
            if name == "azure-tdx":
                verify["tdx"] = TdxVerify()
        else:  # aci: the sidecar's MAA token, judged by the azure section
            assert maa_endpoint is not None  # hardware_platforms checked it
            collect["aci"] = AciCollect(maa_endpoint=maa_endpoint)
            verify["maa"] = MaaVerify(instances=[maa_endpoint])
    return collect, verify


def _provision_hardware(request: FederationRequest, bundles: Mapping[str, Path],
                        platforms: Sequence[str], record: RecordConfig) -> None:
    evidence = [HARDWARE[name].evidence for name in platforms]
    collect, verify = _hardware_sections(platforms, request.maa_endpoint)
    roster = {s.name: {"cc_enabled": s.cc_enabled, "platforms": evidence}
              for s in request.sites}
    policy = hardware_policy(platforms)
    for site in request.sites:
        bundle = bundles[site.name]
        _write(bundle / "policy.yaml", policy.encode())
        config = CCConfig(
            site=site.name, policy="policy.yaml",
            collect=collect if site.cc_enabled else {}, verify=verify,
            roster={"require_all_cc": request.require_all_cc, "sites": roster},
            rounds=request.rounds, actions=request.actions, record=record,
            seal={"mode": request.seal},
        )
        _write(bundle / "cc_config.yaml",
               yaml.safe_dump(config.model_dump(mode="json", exclude_none=True),
                              sort_keys=False).encode())


def hardware_policy(platforms: Sequence[str]) -> str:
    """The starter policy for these platforms, requiring each one's evidence; it accepts no
    measurement yet, so every site is judged "warning" until the operator fills them in."""
    from .policy.templates import starter_policy

    sections = list(dict.fromkeys(s for name in platforms for s in HARDWARE[name].sections))
    evidence = [HARDWARE[name].evidence for name in platforms]
    text = starter_policy(sections)
    required = f"required_platforms: [{', '.join(sections)}]"
    text = text.replace(required, f"required_platforms: [{', '.join(evidence)}]", 1)
    todo = "".join(f"#   - {line}\n" for line in reference_todo(platforms))
    header = ("# Written by ccattest provisioning for " + ", ".join(platforms) + ".\n"
              "# NO REFERENCE VALUES YET: every site's evidence is judged \"warning\", so\n"
              "# sites are refused and no job runs until you fill in, from the evidence of\n"
              "# a known-good site (ccattest policy init --from EVIDENCE):\n" + todo)
    return header + text
