"""Add ccattest to NVFlare startup kits: the site bundle under local/cc and the CCManager
component in a parent-only resources file. Needs no NVFlare import (the CLI uses it)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..errors import ConfigError
from ..provisioning import FederationRequest, provision

RESOURCES_FILE = "ccattest__p_resources.json"  # *__p_: loaded by parent processes only
BUNDLE_DIR = "cc"
PRIVACY_FILE = "privacy.json"  # NVFlare's site-level filters, run in every job process
SEAL_SCOPE = "ccattest-sealed"
SEAL_FILTER = {"path": "ccattest.nvflare.sealing.SealFilter", "args": {}}


@dataclass(frozen=True)
class Kit:
    name: str
    path: Path  # the site's workspace root: startup/ and local/ below it
    role: str  # "server" or "client"

    @property
    def local(self) -> Path:
        return self.path / "local"


def find_kit(path: Path) -> Kit:
    startup = path / "startup"
    if (startup / "fed_server.json").is_file():
        return Kit(_server_name(startup), path, "server")
    if (startup / "fed_client.json").is_file():
        return Kit(_cert_name(startup / "client.crt", path.name), path, "client")
    raise ConfigError(f"{path} is not an NVFlare server or client startup kit",
                      expected="startup/fed_server.json or startup/fed_client.json")


def _cert_name(cert_path: Path, fallback: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    except (OSError, ValueError, IndexError):
        return fallback


def _server_name(startup: Path) -> str:
    try:
        config = json.loads((startup / "fed_server.json").read_text())
        return str(config["servers"][0].get("identity") or "server")
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return "server"


def component_entry(cc_config: str = f"{BUNDLE_DIR}/cc_config.yaml") -> dict[str, object]:
    return {"id": "ccattest", "path": "ccattest.nvflare.CCManager",
            "args": {"cc_config": cc_config}}


def configure_kits(kits: Sequence[Kit], request: FederationRequest, root_dir: Path,
                   now: datetime) -> Mapping[str, str]:
    """Write every kit's bundle and component; returns the reference measurements."""
    names = [kit.name for kit in kits]
    if len(set(names)) != len(names):
        raise ConfigError("two kits have the same site name", found=", ".join(names))
    missing = {site.name for site in request.sites} - set(names)
    if missing:
        raise ConfigError("the request names sites without a kit", found=sorted(missing))
    bundles = {kit.name: kit.local / BUNDLE_DIR for kit in kits}
    references = provision(request, bundles, root_dir, now)
    for kit in kits:
        (kit.local / RESOURCES_FILE).write_text(
            json.dumps({"format_version": 2, "components": [component_entry()]}, indent=2))
        write_privacy(kit.local, sealed=request.seal != "off")
    return references


def write_privacy(local: Path, *, sealed: bool) -> None:
    """With sealing on, the site's privacy.json gets one scope, its default, whose task
    data and result filters are the SealFilter: NVFlare applies it to every job (a job
    naming another scope is refused), on the server and on clients, with no job code.
    A privacy.json of the operator's keeps its scopes; ours goes first in each."""
    path = local / PRIVACY_FILE
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        raise ConfigError(f"{path} is not JSON", hint="fix it, or move it aside") from None
    scopes = [s for s in data.get("scopes", []) if isinstance(s, dict)]
    for scope in scopes:
        for chain in ("task_data_filters", "task_result_filters"):
            kept = [f for f in scope.get(chain, []) if f != SEAL_FILTER]
            scope[chain] = ([SEAL_FILTER] if sealed else []) + kept
    scopes = [s for s in scopes if s.get("name") != SEAL_SCOPE or sealed]
    if sealed and not any(s.get("name") == SEAL_SCOPE for s in scopes):
        scopes.insert(0, {"name": SEAL_SCOPE, "properties": {},
                          "task_data_filters": [SEAL_FILTER],
                          "task_result_filters": [SEAL_FILTER]})
    if not scopes:
        path.unlink(missing_ok=True)
        return
    data["scopes"] = scopes
    if sealed or data.get("default_scope") == SEAL_SCOPE:
        data["default_scope"] = SEAL_SCOPE if sealed else scopes[0]["name"]
    path.write_text(json.dumps(data, indent=2))
