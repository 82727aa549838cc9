"""Shared TDX test material: one set of test keys per session and the real samples with the
collateral MANIFEST.md pairs them with.

Sources: Phala-Network/dcap-qvl (MIT), google/go-tdx-guest (Apache-2.0),
confidential-containers/trustee (Apache-2.0), intel/SGXDataCenterAttestationPrimitives
(BSD-3-Clause), all read from CCATTEST_VECTORS, never copied.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccattest.platforms.tdx.collateral import TdxCollateral
from ccattest.platforms.tdx.collateral_json import collateral_from_json
from ccattest.testing.tdx import TdxFixture, TdxKeys

DCAP = "tdx/dcap-qvl/sample/"
GTG = "tdx/go-tdx-guest/"
TRUSTEE = "tdx/trustee/deps/verifier/test_data/"
AZURE = "azure/trustee/deps/verifier/test_data/az-tdx-vtpm/"
SYNTHETIC = "tdx/dcap-qvl-synthetic/QuoteVerification/QVL/Src/AttestationApp/sampleData/tdx/"


@pytest.fixture(scope="session")
def tdx_keys() -> TdxKeys:
    return TdxKeys.generate()


@pytest.fixture(scope="session")
def tdx(tdx_keys: TdxKeys) -> TdxFixture:
    return TdxFixture.create(keys=tdx_keys)


def dcap_collateral(vectors: Path) -> TdxCollateral:
    """dcap-qvl's QuoteCollateralV3 for sample/tdx_quote (FMSPC B0C06F000000, 2025-06/07)."""
    return collateral_from_json((vectors / DCAP / "tdx_quote_collateral.json").read_bytes(),
                                source="dcap-qvl sample")


def reissued_tcb_chain(vectors: Path) -> bytes:
    """Intel's TCB Signing certificate as re-issued 2025-05-06 (same key), with the root."""
    data = json.loads((vectors / DCAP / "tdx_quote_collateral.json").read_bytes())
    return data["tcb_info_issuer_chain"].encode()


def go_tdx_guest_collateral(vectors: Path, *, tcb_info: str = "sample_tcbInfo_response",
                            tcb_chain: bytes | None = None) -> TdxCollateral:
    """go-tdx-guest testdata (2023-06/07) with the issuer chains from its test_cases.go."""
    data = vectors / GTG / "testing/testdata"
    chain = tcb_chain or (vectors / GTG / "extracted/tcbInfoIssuerChain.pem").read_bytes()
    return TdxCollateral(
        tcb_info=(data / tcb_info).read_bytes(), tcb_info_issuer_chain=chain,
        qe_identity=(data / "sample_qeIdentity_response").read_bytes(),
        qe_identity_issuer_chain=tcb_chain or (
            vectors / GTG / "extracted/qeIdentityIssuerChain.pem").read_bytes(),
        pck_crl=(data / "pckcrl").read_bytes(),
        pck_crl_issuer_chain=(vectors / GTG / "extracted/pckCrlIssuerChain.pem").read_bytes(),
        root_ca_crl=(data / "rootcrl.der").read_bytes(), source="go-tdx-guest testdata")


def trustee_collateral(vectors: Path) -> TdxCollateral:
    """trustee's TCB Info / QE Identity for FMSPC 00A06D080000 (2025-10/11); trustee ships no
    CRLs, so dcap-qvl's (2025-06/07, expired by then) stand in."""
    dcap = dcap_collateral(vectors)
    chain = reissued_tcb_chain(vectors)
    return TdxCollateral(
        tcb_info=(vectors / TRUSTEE / "tcbInfo.json").read_bytes(), tcb_info_issuer_chain=chain,
        qe_identity=(vectors / TRUSTEE / "enclaveIdentity.json").read_bytes(),
        qe_identity_issuer_chain=chain, pck_crl=dcap.pck_crl,
        pck_crl_issuer_chain=dcap.pck_crl_issuer_chain, root_ca_crl=dcap.root_ca_crl,
        source="trustee test_data + dcap-qvl CRLs")


def synthetic_collateral(vectors: Path) -> TdxCollateral:
    """Intel QVL's sample collateral, made with Intel's TEST PKI (a fake 'Intel SGX Root CA')."""
    base = vectors / SYNTHETIC
    chain = (base / "tcbSignChain.pem").read_bytes()
    return TdxCollateral(
        tcb_info=(base / "tcbInfo.json").read_bytes(), tcb_info_issuer_chain=chain,
        qe_identity=(base / "qeIdentity.json").read_bytes(), qe_identity_issuer_chain=chain,
        pck_crl=(base / "intermediateCaCrl.der").read_bytes(),
        pck_crl_issuer_chain=(base / "pckSignChain.pem").read_bytes(),
        root_ca_crl=(base / "rootCaCrl.der").read_bytes(), source="Intel QVL sample data")
