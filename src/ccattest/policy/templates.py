"""Commented starter policies for `ccattest policy init`."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from ..text import one_of

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

_SNP = """\

# AMD SEV-SNP guests. The verifier proves the report is signed by a genuine AMD chip
# (VCEK/VLEK chain to AMD's pinned root keys); these rules say which guests you accept.
snp:
  allow: true
  # Launch measurements (SHA-384, hex) of the guest images you built and reviewed.
  measurements: [{measurements}]
  # measurements_file: snp-measurements.txt
  # Minimum firmware security patch levels of the reported TCB (per component).
  min_tcb: {{bootloader: 0, tee: 0, snp: 0, microcode: 0}}
  # min_tcb_by_product: {{Genoa: {{bootloader: 9, tee: 0, snp: 21, microcode: 72}}}}
  allow_debug: false          # a debuggable guest exposes its memory to the host
  allow_migrate_ma: false     # a migration agent can move the guest's keys
  require_smt_disabled: false
  vmpl: [0]                   # privilege levels that may produce reports
  min_guest_svn: 0
  host_data: []               # e.g. the hash of an ACI confidential-container policy
  id_key_digests: []
  author_key_digests: []
  chip_ids: []                # empty: any genuine AMD chip
  products: []                # e.g. [Milan, Genoa, Turin]; empty: any
  signing_keys: [vcek, vlek]
  # min_firmware: "1.55"
  require_revocation_check: false
"""

_TDX = """\

# Intel TDX trust domains (and Intel Trust Authority tokens, judged by the same rules).
# The verifier proves the quote chains to Intel's pinned SGX Root CA and matches the DCAP
# collateral; these rules say which TCB levels and which TDs you accept.
tdx:
  allow: true
  accepted_tcb_statuses: [UpToDate]     # e.g. add SWHardeningNeeded after review
  accepted_qe_tcb_statuses: [UpToDate]
  # out_of_date_grace_days: 30          # tolerate OutOfDate this long after its tcbDate
  forbidden_advisory_ids: []            # e.g. [INTEL-SA-00837]
  # MRTD of the TD images you built and reviewed (SHA-384, hex).
  mrtd: [{measurements}]
  # mrtd_file: tdx-mrtd.txt
  rtmrs: {{}}                           # e.g. {{2: [<hex>]}} for the kernel command line
  mr_config_id: []
  mr_owner: []
  mr_owner_config: []
  mr_seam: []                           # allowed TDX module measurements; empty: any
  allow_debug: false                    # a debug TD exposes its memory to the host
  xfam: []
  # min_tee_tcb_svn: "03000600000000000000000000000000"
  expired_collateral: reject            # or warn
"""

_NVGPU = """\

# NVIDIA GPUs in CC mode (Hopper, Blackwell), and NRAS results judged by the same rules.
# The verifier proves the report is signed by a genuine NVIDIA GPU (device chain to NVIDIA's
# pinned Device Identity CA) and answers our nonce; these rules say which GPUs you accept.
nvgpu:
  allow: true
  architectures: []             # e.g. [HOPPER, BLACKWELL]; empty: any
  # min_driver_version: "550.90.07"
  # min_vbios_version: "96.00.9F.00.01"
  driver_versions: []           # exact allow-lists; empty: any
  vbios_versions: []
  require_rim_match: true       # measurements must match NVIDIA's signed RIMs
  require_cc_mode: true         # DevTools mode is not confidential
  require_ppcie: false          # protected PCIe (multi-GPU)
  allow_cert_hold: false        # a certificate on hold (OCSP) is tolerated when true
  require_revocation_check: false
"""

_AZURE = """\

# Microsoft Azure Attestation tokens (confidential containers on ACI, confidential VMs).
# The verifier proves the token comes from an MAA instance you named (--instance) and binds
# your nonce; these rules judge what MAA says about the workload. (Azure CVM evidence
# verified natively, --platform azure-snp|azure-tdx, is judged by the snp or tdx section.)
azure:
  allow: true
  attestation_types: [sevsnpvm, azurevm]
  compliance_statuses: []        # e.g. [azure-compliant-uvm] for containers
  isolation_tees: [sevsnpvm, tdxvm]
  allow_debug: false
  allow_migration: false
  require_smt_disabled: false
  require_secure_boot: false
  measurements: [{measurements}]
  host_data: []                  # SHA-256 of the container group's CCE policy
  id_key_digests: []
  min_guest_svn: 0
  min_tcb: {{bootloader: 0, tee: 0, snp: 0, microcode: 0}}
  vmpl: [0]
  # Native CVM evidence (azure-snp / azure-tdx): vTPM PCR reference values (SHA-256 bank)
  # and the VM configuration; require_secure_boot above applies to both.
  pcrs: {{}}                       # e.g. {{0: [<hex>], 4: [<hex>]}}
  allow_console: true
"""

TEMPLATES = {"software": _SOFTWARE, "snp": _SNP, "tdx": _TDX, "nvgpu": _NVGPU,
             "azure": _AZURE}


def starter_policy(platforms: Sequence[str], measurements: Sequence[str] = ()) -> str:
    unknown = [p for p in platforms if p not in TEMPLATES]
    if unknown:
        raise ConfigError(f"no policy template for {', '.join(unknown)}",
                          expected=one_of(sorted(TEMPLATES)))
    text = _HEADER.format(required=", ".join(platforms))
    for platform in platforms:
        text += TEMPLATES[platform].format(measurements=", ".join(measurements))
    return text
