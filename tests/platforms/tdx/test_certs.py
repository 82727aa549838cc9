import contextlib
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.tdx.certs import (
    SGX_OID,
    decode_oid,
    decode_unsigned,
    load_certificates,
    load_crl,
    parse_sgx_extension,
    pck_extensions,
    pinned_root,
    read_tlv,
    sgx_extension_value,
)
from ccattest.testing.tdx import der, der_oid, der_sequence, pem, sgx_extension

ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
SVNS = tuple(range(1, 17))


def _extension(**changes):
    values = {"fmspc": bytes.fromhex("00906ed50000"), "sgx_svns": SVNS, "pce_svn": 300,
              "cpu_svn": bytes(SVNS)}
    values.update(changes)
    return sgx_extension(**values)


def test_pinned_root_is_intels():
    root = pinned_root()
    assert root.fingerprint(hashes.SHA256()).hex() == ROOT_SHA256
    assert hashlib.sha256(der(root)).hexdigest() == ROOT_SHA256
    assert root.subject == root.issuer


def test_sgx_extension_is_decoded():
    found = parse_sgx_extension(_extension(sgx_type=1))
    assert found.fmspc.hex() == "00906ed50000"
    assert found.sgx_svns == SVNS and found.pce_svn == 300
    assert found.cpu_svn == bytes(SVNS) and found.pce_id == bytes(2)
    assert found.ppid == bytes(range(16)) and found.sgx_type == 1
    assert found.platform_instance_id is None


@pytest.mark.parametrize(("drop", "message"), [
    ("1", "no PPID"), ("2", "no TCB"), ("3", "no PCE-ID"), ("4", "no FMSPC")])
def test_missing_entries_are_malformed(drop, message):
    with pytest.raises(MalformedEvidence, match=message):
        parse_sgx_extension(_extension(drop=drop))
    assert parse_sgx_extension(_extension(drop="5")).sgx_type is None


def test_malformed_extension_values():
    with pytest.raises(MalformedEvidence, match="wrong length"):
        parse_sgx_extension(_extension(fmspc=bytes(5)))
    with pytest.raises(MalformedEvidence, match="out of range"):
        parse_sgx_extension(_extension(sgx_svns=(256, *SVNS[1:])))
    with pytest.raises(MalformedEvidence, match="after the SGX extension"):
        parse_sgx_extension(_extension() + b"\0")
    with pytest.raises(MalformedEvidence, match="wrong DER type"):
        parse_sgx_extension(b"\x04\x00")
    pair = der_sequence(der_oid(SGX_OID + ".4"))
    with pytest.raises(MalformedEvidence, match="not an \\(OID, value\\) pair"):
        parse_sgx_extension(der_sequence(pair))
    twice = der_sequence(der_oid(SGX_OID + ".4"), b"\x04\x06" + bytes(6))
    with pytest.raises(MalformedEvidence, match="twice"):
        parse_sgx_extension(der_sequence(twice, twice))


def test_missing_tcb_components():
    tcb = der_sequence(der_sequence(der_oid(SGX_OID + ".2.1"), b"\x02\x01\x01"))
    value = der_sequence(der_sequence(der_oid(SGX_OID + ".2"), tcb))
    with pytest.raises(MalformedEvidence, match="component 2"):
        parse_sgx_extension(value)


def test_der_reader_edges():
    assert read_tlv(b"\x04\x81\x80" + bytes(128))[1] == bytes(128)
    for data, message in ((b"\x04", "truncated"), (b"\x1f\x01\x00", "multi-byte"),
                          (b"\x04\x85" + bytes(8), "bad DER length"),
                          (b"\x04\x80", "bad DER length"), (b"\x04\x05ab", "truncated")):
        with pytest.raises(MalformedEvidence, match=message):
            read_tlv(data)
    assert decode_oid(bytes.fromhex("2a864886f84d010d01")) == SGX_OID
    assert decode_oid(bytes.fromhex("8837")) == "2.999"
    with pytest.raises(MalformedEvidence, match="OBJECT IDENTIFIER"):
        decode_oid(b"\x86")
    with pytest.raises(MalformedEvidence, match="not a 8-bit INTEGER"):
        decode_unsigned(b"", "x", bits=8)
    with pytest.raises(MalformedEvidence, match="out of range"):
        decode_unsigned(b"\xff", "x", bits=8)


@settings(max_examples=150)
@given(offset=st.integers(0, 600), xor=st.integers(1, 255), cut=st.integers(0, 700))
def test_mutated_extensions_are_only_malformed(offset, xor, cut):
    data = bytearray(_extension())
    if offset < len(data):
        data[offset] ^= xor
    with contextlib.suppress(MalformedEvidence):
        parse_sgx_extension(bytes(data[:cut]))


def test_pck_certificate_extensions(tdx):
    assert pck_extensions(tdx.pck).fmspc == tdx.fmspc
    assert sgx_extension_value(tdx.ca) is None
    with pytest.raises(MalformedEvidence, match="not a PCK certificate"):
        pck_extensions(tdx.ca)


def _self_signed(*extensions: x509.UnrecognizedExtension) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(pinned_root().not_valid_before_utc)
               .not_valid_after(pinned_root().not_valid_after_utc))
    for extension in extensions:
        builder = builder.add_extension(extension, False)
    return builder.sign(key, hashes.SHA256())


def test_certificates_without_or_with_broken_extensions():
    assert sgx_extension_value(_self_signed()) is None
    broken = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.19"), b"\x01\x02")
    with pytest.raises(MalformedEvidence, match="extensions do not parse"):
        sgx_extension_value(_self_signed(broken))


def test_certificates_load_from_pem_der_and_padding(tdx):
    chain = pem(tdx.pck, tdx.ca, tdx.root)
    assert load_certificates(chain + bytes(7)) == [tdx.pck, tdx.ca, tdx.root]
    ders = der(tdx.root) + der(tdx.ca) + der(tdx.pck)
    assert load_certificates(ders + bytes(3)) == [tdx.root, tdx.ca, tdx.pck]
    for data, message in ((bytes(4), "empty"), (b"\x02\x01\x00", "not a DER certificate"),
                          (b"\x30\x03abc", "does not parse"),
                          (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                           "does not parse")):
        with pytest.raises(MalformedEvidence, match=message):
            load_certificates(data)


def test_crls_load_from_der_and_pem(tdx):
    crl = tdx.crl()
    assert load_crl(crl, "CRL").public_bytes(serialization.Encoding.DER) == crl
    text = x509.load_der_x509_crl(crl).public_bytes(serialization.Encoding.PEM)
    assert load_crl(b"\n" + text + b"\0", "CRL").public_bytes(serialization.Encoding.DER) == crl
    with pytest.raises(MalformedEvidence, match="PCK CRL does not parse"):
        load_crl(crl + b"\0", "PCK CRL")
