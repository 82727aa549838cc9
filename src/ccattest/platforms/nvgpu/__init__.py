"""The `nvgpu` platform: NVIDIA GPU confidential computing (Hopper H100/H200, Blackwell).

The GPU answers an SPDM 1.1 GET_MEASUREMENTS request carrying the caller's 32-byte nonce
with its measurements and opaque data, signed by a device key (the "GSP FMC LF" alias key)
whose chain ends at the NVIDIA Device Identity CA that ccattest pins. See FORMATS.md,
"NVIDIA GPU".

Evidence shape (what the attester writes, what the verifier reads):
- one GPU: `report` is the NVML attestation report (raw bytes or hex text) and
  `endorsements["cert_chain"]` the device's PEM chain, leaf first;
- several GPUs: `report` is NVIDIA's serialized evidence JSON, a list of
  `{arch, certificate, evidence, nonce}` (base64 chain, base64 report, hex nonce);
- either way, an attester that read the CC state from NVML adds one `log` entry
  `{"type": "nvgpu/cc-state", "cc_mode": "on"|"off", "devtools": "on"|"off",
  "environment": "prod"|"sim"|"unavailable"|"unknown"}` (collect.cc_state_entry). It is
  unsigned side data: the report itself does not say whether DevTools mode is on, so the
  claims `cc_mode`/`devtools` are only as good as the host, and the claim `cc_state` says
  so ("attester-declared (NVML), unsigned", or "not reported" when the log has no entry).
"""

PLATFORM = "nvgpu"
ARCHITECTURES = ("HOPPER", "BLACKWELL")
CC_STATE_LOG_TYPE = "nvgpu/cc-state"
CC_STATE_DECLARED = "attester-declared (NVML), unsigned"
CC_STATE_NOT_REPORTED = "not reported"
