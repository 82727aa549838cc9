"""Commented starter policies for `ccattest policy init`."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError

_HEADER = """\
# ccattest appraisal policy. Every site judges its peers' evidence against its own policy.
# Check it with: ccattest policy check FILE
version: 1

common:
  # How long an affirming result stays valid before the peer must attest again.
  result_lifetime_seconds: 3600
  # Platforms every site must present an affirming result for (e.g. [snp, nvgpu]).
  required_platforms: [{required}]
"""

_SOFTWARE = """\

# DEVELOPMENT ONLY. The software platform is a development TEE: reports are signed by a
# key in ordinary files. It proves which site answered a challenge and what that site
# declared it runs; it gives NO hardware guarantee. Never allow it in production.
software:
  allow: true
  # Allowed measurements (SHA-384, hex). `ccattest verify --json` shows a site's
  # measurement under claims.measurement. Leave empty and results are only "warning".
  measurements: [{measurements}]
  # Or one digest per line in a file, relative to this policy:
  # measurements_file: software-measurements.txt
  # Lowest acceptable security version of the attested software.
  min_svn: 0
  # Debug mode lets the host inspect the workload; keep it forbidden.
  allow_debug: false
  # Site identities (certificate common names) to accept; empty accepts any site the
  # configured software root has certified.
  identities: []
"""

TEMPLATES = {"software": _SOFTWARE}


def starter_policy(platforms: Sequence[str], measurements: Sequence[str] = ()) -> str:
    unknown = [p for p in platforms if p not in TEMPLATES]
    if unknown:
        raise ConfigError(f"no policy template for {', '.join(unknown)}",
                          expected=f"one of {sorted(TEMPLATES)}")
    text = _HEADER.format(required=", ".join(platforms))
    for platform in platforms:
        text += TEMPLATES[platform].format(measurements=", ".join(measurements))
    return text
