"""Intel Trust Authority (ITA): attestation tokens that Intel's service issues after it has
appraised an SGX or TDX quote.

An ITA token is a JWT signed with PS384 by a key published in a JWKS whose entries carry an
x5c certificate chain. ccattest verifies the chain to a configured root (no ITA root is
pinned: see verify.py), the token signature, its times, and the binding of the caller's
report_data, then maps the token's TDX claims onto the names the TDX verifier uses.
"""

PLATFORM = "ita"
JWS_ALGORITHM = "PS384"

__all__ = ["JWS_ALGORITHM", "PLATFORM"]
