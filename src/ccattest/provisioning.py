"""Write each site's CC bundle: keys, the federation's software root, a policy holding every
CC site's reference measurement, and cc_config.yaml. NVFlare-free: the NVFlare provision
builder and `ccattest nvflare configure` both call it.

Bundle layout (a folder per site, e.g. <startup kit>/local/cc):
    cc_config.yaml   policy.yaml   software-root.pem   keys/site.pem   keys/site.key.pem
    workload.txt     the site's declared workload settings, measured at every collection
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization

from .mesh.actions import ActionConfig
from .mesh.config import CCConfig, RoundsConfig, SoftwareCollect, software_attester
from .platforms.software.pki import KeyDir, issue_site

WORKLOAD_FILE = "workload.txt"


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
    """Write every site's bundle; returns each CC site's reference measurement (hex)."""
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
            rounds=request.rounds, actions=request.actions,
        )
        _write(bundle / "cc_config.yaml",
               yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode())
    return references


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
