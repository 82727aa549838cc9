"""The `tdx` platform: Intel TDX quotes (DCAP, ECDSA P-256).

A TD quote is signed by an attestation key that the Quoting Enclave (QE) vouches for in its
own SGX report; that report is signed by the platform's PCK key, which Intel certifies
through a PCK CA up to the Intel SGX Root CA that ccattest pins. Intel's collateral (TCB
Info, QE Identity, CRLs) turns the platform's SVNs into a TCB status. See FORMATS.md,
"Intel TDX".
"""

PLATFORM = "tdx"
PCS_URL = "https://api.trustedservices.intel.com"
