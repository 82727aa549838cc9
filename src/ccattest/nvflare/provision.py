"""`CCBuilder`: an NVFlare provision builder that adds ccattest to every site's kit.

project.yml:
    participants:
      - name: site-1
        type: client
        org: example
        cc_config: site-1-cc.yaml        # {cc_enabled: true, workload: {job: fedavg}}
    builders:
      - path: nvflare.lighter.impl.workspace.WorkspaceBuilder
      - ...
      - path: ccattest.nvflare.provision.CCBuilder
        args: {rounds: {interval_seconds: 60}, actions: {on_rejected: exclude_site},
               platforms: [snp, nvgpu]}   # CC hardware; without it the development TEE

Do not use NVFlare's own CCBuilder in the same project: it reads `cc_config` too. The
federation's software root key stays in the provisioning state folder, never in a kit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from nvflare.lighter.spec import Builder

from ..errors import ConfigError
from ..mesh.actions import ActionConfig
from ..mesh.config import RoundsConfig, SealMode
from ..provisioning import FederationRequest, SiteRequest, provision
from ..timeutil import utcnow
from .kits import BUNDLE_DIR, RESOURCES_FILE, component_entry, write_privacy

SITE_TYPES = ("server", "client")


def _site_request(participant: Any) -> SiteRequest:
    path = participant.get_prop("cc_config")
    if path is None:
        return SiteRequest(participant.name, cc_enabled=False)
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        # Unlike NVFlare's CCBuilder, never fall back to "CC disabled" on a bad config.
        raise ConfigError(f"cannot read cc_config of {participant.name}: {path}",
                          found=str(exc)) from None
    if not isinstance(data, dict) or set(data) - {"cc_enabled", "workload"}:
        raise ConfigError(f"{path}: expected keys cc_enabled and workload", found=data)
    return SiteRequest(participant.name, bool(data.get("cc_enabled", True)),
                       {str(k): str(v) for k, v in (data.get("workload") or {}).items()})


class CCBuilder(Builder):
    def __init__(self, rounds: dict[str, Any] | None = None,
                 actions: dict[str, Any] | None = None, require_all_cc: bool = False,
                 platforms: list[str] | None = None, maa_endpoint: str | None = None,
                 seal: str = "off") -> None:
        self.seal = SealMode(seal).value
        self.rounds = RoundsConfig.model_validate(rounds or {})
        self.actions = ActionConfig.model_validate(actions or {})
        self.require_all_cc = require_all_cc
        self.platforms = [str(p).lower() for p in platforms or []]
        self.maa_endpoint = maa_endpoint

    def build(self, project: Any, ctx: Any) -> None:
        sites = [p for p in project.get_all_participants() if p.type in SITE_TYPES]
        request = FederationRequest([_site_request(p) for p in sites], rounds=self.rounds,
                                    actions=self.actions, require_all_cc=self.require_all_cc,
                                    platforms=self.platforms, maa_endpoint=self.maa_endpoint,
                                    seal=self.seal)
        bundles = {p.name: Path(ctx.get_local_dir(p)) / BUNDLE_DIR for p in sites}
        provision(request, bundles, Path(ctx.get_state_dir()) / "ccattest-root", utcnow())
        for participant in sites:
            resources = Path(ctx.get_local_dir(participant)) / RESOURCES_FILE
            resources.write_text(json.dumps(
                {"format_version": 2, "components": [component_entry()]}, indent=2))
            write_privacy(Path(ctx.get_local_dir(participant)), sealed=self.seal != "off")
