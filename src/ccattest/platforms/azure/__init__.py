"""Microsoft Azure: confidential VMs (vTPM, HCL report), MAA tokens, confidential containers.

Confidential VMs (`azure-snp`, `azure-tdx`): the paravisor (HCL) writes an HCL report to
the vTPM; it embeds the hardware report (SNP report or TDX TDREPORT) whose report_data is
the digest of the runtime data, and the runtime data holds the vTPM attestation key
(HCLAkPub). A TPM quote signed by that key carries the verifier's nonce and covers the
PCRs. See hcl.py, tpm.py, vtpm.py and FORMATS.md, "Azure".
"""

PLATFORM_SNP = "azure-snp"
PLATFORM_TDX = "azure-tdx"
CVM_PLATFORMS = (PLATFORM_SNP, PLATFORM_TDX)
