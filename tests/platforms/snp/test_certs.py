import contextlib
import hashlib
import re
import struct
import uuid
from importlib import resources

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import MalformedEvidence
from ccattest.platforms.snp.certs import (
    TABLE_GUIDS,
    amd_extensions,
    build_cert_table,
    bundled_intermediates,
    der_bytes,
    der_integer,
    der_string,
    hwid_value,
    load_certificates,
    parse_cert_table,
    pinned_arks,
)
from ccattest.platforms.snp.verify import _pss_signed
from ccattest.testing.snp import amd_extension, der, make_leaf, pem

VCEK_GUID = "63da758d-e664-4564-adc5-f4b93be8accd"
ENTRY = struct.Struct("<16sII")


def test_table_round_trip_with_roles_and_unknown_guids():
    other = str(uuid.uuid4())
    table = build_cert_table({"ark": b"A" * 5, "vcek": b"V" * 3, other: b"X"})
    assert parse_cert_table(table) == {"ark": b"A" * 5, "vcek": b"V" * 3, other: b"X"}
    assert TABLE_GUIDS[uuid.UUID(VCEK_GUID)] == "vcek"


def test_table_guids_are_rfc4122_byte_order():
    table = build_cert_table({"vcek": b"v"})
    assert table[:16] == uuid.UUID(VCEK_GUID).bytes
    assert parse_cert_table(table) == {"vcek": b"v"}


def _entries(*entries: tuple[bytes, int, int], tail: bytes = b"") -> bytes:
    return b"".join(ENTRY.pack(*entry) for entry in entries) + bytes(ENTRY.size) + tail


@pytest.mark.parametrize(("blob", "message"), [
    (b"", "no terminating"),
    (ENTRY.pack(uuid.uuid4().bytes, 48, 1), "no terminating"),
    (_entries((uuid.uuid4().bytes, 48, 10), tail=b"abc"), "outside its data"),
    (_entries((uuid.uuid4().bytes, 0, 4), tail=b"abcd"), "outside its data"),
    (_entries((uuid.UUID(VCEK_GUID).bytes, 72, 1), (uuid.UUID(VCEK_GUID).bytes, 72, 1),
              tail=b"a"), "twice"),
])
def test_malformed_tables(blob, message):
    with pytest.raises(MalformedEvidence, match=message):
        parse_cert_table(blob)


def test_empty_entries_are_skipped_and_tables_are_bounded():
    assert parse_cert_table(_entries((uuid.uuid4().bytes, 0, 0))) == {}
    assert parse_cert_table(bytes(24)) == {}
    endless = b"".join(ENTRY.pack(uuid.uuid4().bytes, 0, 0) for _ in range(80))
    with pytest.raises(MalformedEvidence, match="no terminating"):
        parse_cert_table(endless + bytes(24))


@given(st.binary(max_size=600))
def test_arbitrary_tables_give_only_malformed_evidence(blob):
    with contextlib.suppress(MalformedEvidence):
        for name, data in parse_cert_table(blob).items():
            assert data and name


def test_pinned_roots_match_the_readme():
    readme = resources.files("ccattest.platforms.snp").joinpath("roots", "README.md")
    listed = dict(re.findall(r"\| (\S+\.der) \| \S+ \| ([0-9a-f]{64}) \|", readme.read_text()))
    assert len(listed) == 9
    for name, fingerprint in listed.items():
        data = resources.files("ccattest.platforms.snp").joinpath("roots", name).read_bytes()
        assert hashlib.sha256(der_bytes(load_certificates(data)[0])).hexdigest() == fingerprint
    arks = pinned_arks()
    assert sorted(arks) == ["Genoa", "Milan", "Turin"]
    assert {listed[f"ark-{p.lower()}.der"] for p in arks} == {
        hashlib.sha256(der_bytes(c)).hexdigest() for c in arks.values()}


def test_bundled_intermediates_are_signed_by_the_pinned_arks():
    arks = {der_bytes(ark): ark for ark in pinned_arks().values()}
    for intermediate in bundled_intermediates():
        issuer = next(d for d, a in arks.items() if a.subject == intermediate.issuer)
        assert _pss_signed(der_bytes(intermediate), issuer)


def test_der_pem_padding_and_bundles(milan):
    leaf_der = der(milan.leaf)
    assert load_certificates(leaf_der)[0] == milan.leaf
    assert load_certificates(leaf_der + bytes(100))[0] == milan.leaf
    assert load_certificates(pem(milan.leaf, milan.intermediate)) == [milan.leaf,
                                                                      milan.intermediate]
    with pytest.raises(MalformedEvidence, match="after a DER certificate"):
        load_certificates(leaf_der + b"\x01")


@pytest.mark.parametrize("data", [b"", b"\x30", b"\x30\x85\x00\x00\x00\x00\x01",
                                  b"\x30\x82\x10\x00abc", b"\x30\x03abc",
                                  b"-----BEGIN CERTIFICATE-----\nnot base64\n"
                                  b"-----END CERTIFICATE-----\n"])
def test_garbage_certificates_are_malformed(data):
    with pytest.raises(MalformedEvidence):
        load_certificates(data)


@given(st.binary(max_size=300))
def test_arbitrary_certificate_bytes_give_only_malformed_evidence(data):
    with contextlib.suppress(MalformedEvidence):
        load_certificates(b"\x30" + data)


def test_vcek_extensions(milan):
    extensions = amd_extensions(milan.leaf)
    assert extensions.product_name == "Milan-B0" and extensions.product == "Milan"
    assert extensions.struct_version == 1
    assert extensions.spls == milan.tcb
    assert extensions.hwid == milan.chip_id and extensions.csp_id is None


def test_wrapped_hwid_and_unknown_product(milan):
    leaf = make_leaf(milan.keys.leaf.public_key(), milan.keys.intermediate, milan.intermediate,
                     kind="vcek", product_name="Venice-A0", spls=milan.tcb, hwid=milan.chip_id,
                     now=milan.now, hwid_wrapped=True)
    extensions = amd_extensions(leaf)
    assert extensions.hwid == milan.chip_id
    assert extensions.product is None and extensions.product_name == "Venice-A0"


def test_missing_extensions_are_none(milan):
    extensions = amd_extensions(milan.intermediate)
    assert extensions.product_name is None and extensions.hwid is None
    assert extensions.spls == {} and extensions.struct_version is None


@pytest.mark.parametrize(("suffix", "value", "message"), [
    ("3.1", b"\x02\x02\x01\x00", "out of range"),
    ("3.1", b"\x02\x01\xff", "out of range"),
    ("3.1", b"\x02\x00", "empty INTEGER"),
    ("3.2", b"\x04\x01\x01", "not the expected DER value"),
    ("3.3", b"\x02\x01\x01\x00", "not the expected DER value"),
    ("2", b"\x16\x02\xff\xfe", "not text"),
    ("4", bytes(12), "unexpected length"),
    ("4", b"\x04\x41" + bytes(64), "unexpected length"),
])
def test_bad_extension_values_are_malformed(milan, suffix, value, message):
    builder = (x509.CertificateBuilder().subject_name(milan.leaf.subject)
               .issuer_name(milan.leaf.issuer).public_key(milan.keys.leaf.public_key())
               .serial_number(1).not_valid_before(milan.leaf.not_valid_before_utc)
               .not_valid_after(milan.leaf.not_valid_after_utc)
               .add_extension(amd_extension(suffix, value), False))
    cert = builder.sign(milan.keys.intermediate, hashes.SHA384())
    with pytest.raises(MalformedEvidence, match=message):
        amd_extensions(cert)


@pytest.mark.parametrize(("data", "value"), [
    (bytes(range(64)), bytes(range(64))), (b"\x04\x40" + bytes(range(64)), bytes(range(64))),
    (b"\x04\x3e" + bytes(62), b"\x04\x3e" + bytes(62)), (bytes(8), bytes(8)),
    (b"\x04\x08" + b"\x01" * 8, b"\x01" * 8),
])
def test_hwid_encodings(data, value):
    assert hwid_value(data) == value


@pytest.mark.parametrize("data", [b"\x04\x08" + bytes(7), b"\x05\x40" + bytes(64), bytes(65)])
def test_bad_hwids(data):
    with pytest.raises(MalformedEvidence):
        hwid_value(data)


def test_der_primitives():
    assert der_integer(b"\x02\x01\x7f", "x") == 127
    assert der_integer(b"\x02\x81\x01\x05", "x") == 5
    assert der_string(b"\x0c\x03abc", "x") == "abc"
    for bad in (b"\x02", b"\x02\x85\x00", b"\x02\x81", b"\x02\x05\x01"):
        with pytest.raises(MalformedEvidence):
            der_integer(bad, "x")


def test_unparseable_extension_list_is_malformed():
    class Unparseable:
        @property
        def extensions(self):
            raise x509.DuplicateExtension("duplicate", x509.ObjectIdentifier("1.2.3"))

    with pytest.raises(MalformedEvidence, match="extensions do not parse"):
        amd_extensions(Unparseable())  # type: ignore[arg-type]
