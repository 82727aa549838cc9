import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.tdx.collateral_json import (
    MAX_JSON_BYTES,
    collateral_from_json,
    collateral_to_json,
)
from ccattest.platforms.tdx.tcb import split_signed

from .conftest import DCAP


def _document(tdx) -> dict:
    return json.loads(collateral_to_json(tdx.collateral()))


def test_round_trip(tdx):
    collateral = tdx.collateral()
    again = collateral_from_json(collateral_to_json(collateral), source="x")
    assert again == collateral.__class__(**{**collateral.__dict__, "source": "x"})


def test_whole_served_bodies_are_taken_as_they_are(tdx):
    document = _document(tdx)
    del document["tcb_info_signature"]
    served = tdx.tcb_info()
    document["tcb_info"] = served.decode()
    assert collateral_from_json(json.dumps(document).encode()).tcb_info == served


def test_inner_text_is_kept_byte_for_byte(tdx):
    document = _document(tdx)
    document["qe_identity"] = " " + json.dumps(json.loads(document["qe_identity"]), indent=3)
    served = collateral_from_json(json.dumps(document).encode()).qe_identity
    assert split_signed(served, "enclaveIdentity", "x").body == document["qe_identity"][1:].encode()


def test_pem_crls_are_accepted(tdx):
    document = _document(tdx)
    document["pck_crl"] = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"
    assert collateral_from_json(json.dumps(document).encode()).pck_crl.startswith(b"-----BEGIN")


@pytest.mark.parametrize(("change", "message"), [
    ({"tcb_info": None}, "no 'tcb_info' text"),
    ({"pck_crl": "zz"}, "neither hex DER nor PEM"),
    ({"tcb_info_signature": 5}, "signature is not text"),
    ({"qe_identity_signature": "xyz"}, "signature is not hex"),
    ({"tcb_info": "[1]"}, "not one JSON object"),
    ({"tcb_info": '{"a":1},"tcbInfo":{"b":2}'}, "not one JSON object"),
    ({"tcb_info": "{"}, "is not JSON"),
])
def test_malformed_documents(tdx, change, message):
    document = {**_document(tdx), **change}
    with pytest.raises(MalformedEvidence, match=message):
        collateral_from_json(json.dumps(document).encode())


def test_not_a_document():
    with pytest.raises(MalformedEvidence, match="not JSON"):
        collateral_from_json(b"\xff\xfe")
    with pytest.raises(MalformedEvidence, match="not an object"):
        collateral_from_json(b"[]")
    with pytest.raises(MalformedEvidence, match="too large"):
        collateral_from_json(b" " * (MAX_JSON_BYTES + 1))


@pytest.mark.vectors
def test_dcap_qvl_sample_shape(vectors):
    collateral = collateral_from_json((vectors / DCAP / "tdx_quote_collateral.json").read_bytes())
    assert collateral.tcb_info.startswith(b'{"tcbInfo":{"id":"TDX","version":3')
    assert collateral.pck_crl[:2] == b"\x30\x82"
    assert collateral.tcb_info_issuer_chain.startswith(b"-----BEGIN CERTIFICATE-----")


@settings(max_examples=100)
@given(data=st.data())
def test_mutated_documents_give_only_typed_errors(tdx, data):
    document = bytearray(collateral_to_json(tdx.collateral()))
    for _ in range(data.draw(st.integers(1, 3))):
        document[data.draw(st.integers(0, len(document) - 1))] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(MalformedEvidence):
        collateral_from_json(bytes(document))
