"""NVIDIA reference integrity manifests (RIMs): parse, verify, compare with SPDM measurements.

A RIM is a SWID tag (ISO/IEC 19770-2) that NVIDIA signs with an enveloped XML signature
(ecdsa-sha384 over SHA-384 digests, Canonical XML 1.1; FORMATS.md, "NVIDIA GPU"). Its Payload
lists measurement records: an index, an active flag and one or more alternative SHA-384
values (`Hash0`, `Hash1`, ... in the xmlenc#sha384 namespace). One RIM describes the driver,
another the VBIOS; together they give the golden value of each SPDM measurement block.

Rules applied here:
- RIM index i is compared with SPDM measurement block i + 1 (blocks count from 1).
- A block matches when it equals any of the record's alternatives.
- The driver's and the VBIOS's active indices must not overlap (VerificationFailed).
- Index 35 (NVDEC0's firmware) is skipped when NVDEC0 is disabled. FORMATS.md says "VBIOS
  index 35"; in NVIDIA's RIMs index 35 comes from the driver RIM, so the rule is applied to
  whichever RIM lists it.
- Indices in results are RIM indices (SPDM block index - 1).

Verification pins the NVIDIA CoRIM signing Root CA (rim_roots/) and the time (`at`): the
signer certificates live one to two years. The chain in the signature's KeyInfo is built
and checked here (signatures, validity at `at`, CA constraints) because NVIDIA's certificates
encode 2023 dates as GeneralizedTime, which cryptography's RFC 5280 path builder refuses;
the XML signature itself is checked by signxml with the verified signer pinned. The RIM is
read back from what signxml says was signed, never from the raw input.

XML is parsed by lxml without entity expansion, DTDs or network access; a document with a
DTD is refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from typing import Any, Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)
from signxml.exceptions import SignXMLException

from ...errors import ConfigError, MalformedEvidence, VerificationFailed
from ...timeutil import require_aware
from .certs import common_name

SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
SHA384_NS = "http://www.w3.org/2001/04/xmlenc#sha384"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N11 = CanonicalizationMethod.CANONICAL_XML_1_1.value
ECDSA_SHA384 = SignatureMethod.ECDSA_SHA384.value
SHA384 = DigestAlgorithm.SHA384.value
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

ROOT_FILE = "nvidia-corim-signing-root-ca.pem"
MAX_RIM_BYTES = 1024 * 1024
MAX_INDEX = 0xFFFF
MAX_ALTERNATIVES = 64
MAX_MEASUREMENTS = 4096
MAX_CHAIN = 8
DIGEST_SIZE = 48
NVDEC0_INDEX = 35
FIRST_EXTENDED_INDEX = 64  # records from here on may carry non-hash values (NVIDIA's ns3)

Kind = Literal["driver", "vbios"]
KINDS: tuple[Kind, ...] = ("driver", "vbios")
_DRIVER_ID = re.compile(r"NV_GPU_(?:CC_)?DRIVER_([A-Za-z0-9]+)_([A-Za-z0-9.\-]+)")
_VBIOS_ID = re.compile(r"NV_GPU_VBIOS_([A-Za-z0-9]+)_([A-Za-z0-9]+)_([A-Za-z0-9]+)_([0-9A-Fa-f]+)")
_VBIOS_VERSION = re.compile(r"[0-9A-Fa-f]{2}(?:\.[0-9A-Fa-f]{2}){4}")
_ID_PART = re.compile(r"[A-Za-z0-9]+")
_VERSION_PART = re.compile(r"[A-Za-z0-9.\-]+")
_CERT_ERRORS = (ValueError, TypeError, UnsupportedAlgorithm, x509.InvalidVersion,
                x509.DuplicateExtension)
_SIGNXML_ERRORS = (SignXMLException, InvalidSignature, etree.LxmlError, ValueError, TypeError,
                   UnsupportedAlgorithm)
_Ext = TypeVar("_Ext", bound=x509.ExtensionType)


def _tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


# --- the model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Measurement:
    """One RIM record: its index, whether it is compared, and its acceptable SHA-384 values."""

    index: int
    active: bool
    alternatives: tuple[bytes, ...]
    name: str = ""

    def matches(self, value: bytes) -> bool:
        return bytes(value) in self.alternatives


@dataclass(frozen=True)
class Rim:
    """A parsed RIM. `chain` (signer first, the pinned root last) is set by verify_rim only:
    an empty chain means the RIM was parsed, not verified."""

    tag_id: str
    version: str  # SoftwareIdentity@version
    colloquial_version: str  # the driver or VBIOS version it describes
    product: str  # Meta@product, e.g. GH100
    kind: Kind
    measurements: tuple[Measurement, ...]
    name: str = ""
    edition: str = ""
    rim_id: str | None = None  # the service id it was asked for, when known
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def verified(self) -> bool:
        return bool(self.chain)

    @property
    def id(self) -> str:
        return self.rim_id or self.tag_id

    @property
    def active(self) -> dict[int, Measurement]:
        return {m.index: m for m in self.measurements if m.active}

    @property
    def not_after(self) -> datetime | None:
        """When the verified signing chain stops being valid (earliest notAfter)."""
        return min((cert.not_valid_after_utc for cert in self.chain), default=None)

    @property
    def validity(self) -> tuple[tuple[str, datetime], ...]:
        """(name, notAfter) of each certificate in the verified signing chain, signer first,
        for a verdict's valid_until; empty for a RIM that was only parsed."""
        label = "VBIOS" if self.kind == "vbios" else "driver"
        return tuple(
            (f"{label} RIM signing certificate notAfter" if position == 0
             else f"{label} RIM chain: {common_name(cert) or _subject(cert)} notAfter",
             cert.not_valid_after_utc)
            for position, cert in enumerate(self.chain))


@dataclass(frozen=True)
class RimIds:
    """The RIM service ids of the driver and VBIOS RIMs that a report calls for."""

    driver: str
    vbios: str


# --- ids ----------------------------------------------------------------------------------------

def id_kind(rim_id: str) -> Kind | None:
    """"driver" or "vbios" for a GPU RIM service id, None for anything else."""
    if _DRIVER_ID.fullmatch(rim_id):
        return "driver"
    if _VBIOS_ID.fullmatch(rim_id):
        return "vbios"
    return None


def _id_version(rim_id: str) -> str:
    match = _DRIVER_ID.fullmatch(rim_id)
    if match:
        return match.group(2).lower()
    match = _VBIOS_ID.fullmatch(rim_id)
    if match:
        return match.group(4).lower()
    raise ConfigError("not an NVIDIA GPU RIM id", expected="NV_GPU_DRIVER_<chip>_<version>, "
                      "NV_GPU_CC_DRIVER_<chip>_<version> or NV_GPU_VBIOS_<project>_<sku>_"
                      "<chip sku>_<version>", found=repr(rim_id))


def check_rim_id(rim: Rim, rim_id: str) -> None:
    """The RIM is the one `rim_id` names: same kind, same version."""
    wanted = _id_version(rim_id)
    have = rim.colloquial_version.lower()
    if rim.kind == "vbios":
        have = have.replace(".", "")
    if id_kind(rim_id) != rim.kind or wanted != have:
        raise VerificationFailed("RIM is not the one asked for", expected=rim_id,
                                 found=f"{rim.kind} RIM for version {rim.colloquial_version}")


def _clean(value: str, what: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string", found=type(value).__name__)
    text = value.strip().strip("\x00").strip()
    if not pattern.fullmatch(text):
        raise MalformedEvidence(f"report's {what} cannot form a RIM id",
                                expected=f"text matching {pattern.pattern}", found=repr(value))
    return text


def rim_ids(*, driver_version: str, vbios_version: str, project: str, project_sku: str,
            chip_sku: str, arch: str = "hopper", chip_info: str | None = None) -> RimIds:
    """The driver and VBIOS RIM ids for a report's claims. Hopper: NV_GPU_DRIVER_GH100_<driver>;
    Blackwell: NV_GPU_CC_DRIVER_<chip info, or GB100>_<driver>. Both:
    NV_GPU_VBIOS_<project>_<project sku>_<chip sku>_<VBIOS version without dots>, upper case.
    NUL padding from the opaque data is removed."""
    driver = _clean(driver_version, "driver version", _VERSION_PART)
    vbios = _clean(vbios_version, "VBIOS version", _VERSION_PART).replace(".", "").upper()
    parts = [_clean(value, name, _ID_PART).upper() for name, value in
             (("project", project), ("project SKU", project_sku), ("chip SKU", chip_sku))]
    family = str(arch).lower()
    if family == "hopper":
        driver_id = f"NV_GPU_DRIVER_GH100_{driver}"
    elif family == "blackwell":
        chip = _clean(chip_info, "chip info", _ID_PART).upper() if chip_info else "GB100"
        driver_id = f"NV_GPU_CC_DRIVER_{chip}_{driver}"
    else:
        raise ConfigError("unknown GPU architecture", expected="hopper or blackwell",
                          found=repr(arch))
    return RimIds(driver_id, "NV_GPU_VBIOS_" + "_".join([*parts, vbios]))


# --- parsing ------------------------------------------------------------------------------------

def _parser() -> etree.XMLParser:
    """A fresh parser (lxml parsers are not shared across threads): no entity expansion, no DTD
    loading, no network."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False)


def _as_bytes(xml: bytes) -> bytes:
    if not isinstance(xml, bytes | bytearray | memoryview):
        raise ConfigError("RIM must be bytes", found=type(xml).__name__)
    data = bytes(xml)
    if len(data) > MAX_RIM_BYTES:
        raise MalformedEvidence("RIM too large", expected=f"<= {MAX_RIM_BYTES} bytes",
                                found=f"{len(data)} bytes")
    return data


def _document(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, parser=_parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise MalformedEvidence("RIM is not well-formed XML", found=str(exc)) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise MalformedEvidence("RIM has a DTD", expected="no DOCTYPE", found=docinfo.doctype)
    return root


def parse_rim(xml: bytes, *, kind: Kind | None = None, rim_id: str | None = None) -> Rim:
    """The RIM's contents, without checking its signature. The kind comes from `kind`, else
    from `rim_id`, else from the version's shape (VBIOS versions are five dotted hex pairs)."""
    return _rim_from(_document(_as_bytes(xml)), kind=kind, rim_id=rim_id)


def _rim_from(root: etree._Element, *, kind: Kind | None, rim_id: str | None) -> Rim:
    if root.tag != _tag(SWID_NS, "SoftwareIdentity"):
        raise MalformedEvidence("RIM is not a SWID tag", expected="SoftwareIdentity",
                                found=str(root.tag))
    meta = root.find(_tag(SWID_NS, "Meta"))
    if meta is None:
        raise MalformedEvidence("RIM has no Meta element", expected="SoftwareIdentity/Meta")
    colloquial = _attribute(meta, "colloquialVersion")
    tag_id = _attribute(root, "tagId")
    return Rim(tag_id=tag_id, version=root.get("version", ""), colloquial_version=colloquial,
               product=_attribute(meta, "product"),
               kind=_resolve_kind(kind, rim_id, tag_id, colloquial),
               measurements=_measurements(root), name=root.get("name", ""),
               edition=meta.get("edition", ""), rim_id=rim_id)


def _resolve_kind(kind: str | None, rim_id: str | None, tag_id: str, colloquial: str) -> Kind:
    if kind is not None:
        if kind not in KINDS:
            raise ConfigError("unknown RIM kind", expected=KINDS, found=repr(kind))
        return kind  # type: ignore[return-value]
    from_id = id_kind(rim_id) if rim_id else None
    found = from_id or id_kind(tag_id)
    if found is not None:
        return found
    return "vbios" if _VBIOS_VERSION.fullmatch(colloquial) else "driver"


def _attribute(element: etree._Element, name: str) -> str:
    value = element.get(name)
    if not value:
        raise MalformedEvidence(f"RIM element {etree.QName(element).localname} lacks {name}",
                                expected=f"a non-empty {name} attribute")
    return value


def _measurements(root: etree._Element) -> tuple[Measurement, ...]:
    found: dict[int, Measurement] = {}
    for payload in root.findall(_tag(SWID_NS, "Payload")):
        for element in payload.findall(_tag(SWID_NS, "Resource")):
            measurement = _measurement(element)
            if measurement is None:
                continue
            if measurement.index in found:
                raise MalformedEvidence("RIM lists a measurement index twice",
                                        found=measurement.index)
            if len(found) >= MAX_MEASUREMENTS:
                raise MalformedEvidence("RIM has too many measurements",
                                        expected=f"<= {MAX_MEASUREMENTS}")
            found[measurement.index] = measurement
    return tuple(found[index] for index in sorted(found))


def _measurement(element: etree._Element) -> Measurement | None:
    """A Measurement record, or None for records this module does not compare: other
    resource types, and NVIDIA's non-hash records past the SPDM block range."""
    if element.get("type") != "Measurement":
        return None
    index = _integer(element, "index", 0, MAX_INDEX)
    if index >= FIRST_EXTENDED_INDEX and element.get(_tag(SHA384_NS, "Hash0")) is None:
        return None
    count = _integer(element, "alternatives", 1, MAX_ALTERNATIVES)
    size = element.get("size")
    if size is not None and size != str(DIGEST_SIZE):
        raise MalformedEvidence(f"RIM measurement {index} is not SHA-384",
                                expected=f"size {DIGEST_SIZE}", found=repr(size))
    return Measurement(index, _boolean(element, "active"),
                       tuple(_digest(element, index, n) for n in range(count)),
                       element.get("name", ""))


def _integer(element: etree._Element, name: str, low: int, high: int) -> int:
    text = element.get(name, "")
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or not low <= int(text) <= high:
        raise MalformedEvidence(f"RIM measurement has a bad {name}",
                                expected=f"a decimal integer {low}..{high}", found=repr(text))
    return int(text)


def _boolean(element: etree._Element, name: str) -> bool:
    text = element.get(name, "").lower()
    if text not in ("true", "false"):
        raise MalformedEvidence(f"RIM measurement has a bad {name}",
                                expected="True or False", found=repr(element.get(name)))
    return text == "true"


def _digest(element: etree._Element, index: int, number: int) -> bytes:
    text = element.get(_tag(SHA384_NS, f"Hash{number}"), "")
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != DIGEST_SIZE or not text.isascii():
        raise MalformedEvidence(f"RIM measurement {index} has a bad Hash{number}",
                                expected=f"{DIGEST_SIZE * 2} hex digits (SHA-384)",
                                found=repr(text[:120]))
    return value


# --- the signature ------------------------------------------------------------------------------

@functools.cache
def pinned_rim_root() -> x509.Certificate:
    """The NVIDIA CoRIM signing Root CA; see rim_roots/README.md for its fingerprint."""
    data = resources.files(__package__).joinpath("rim_roots", ROOT_FILE).read_bytes()
    return x509.load_pem_x509_certificate(data)


def verify_rim(xml: bytes, *, at: datetime, root: x509.Certificate | None = None,
               expected_id: str | None = None, kind: Kind | None = None) -> Rim:
    """Verify a RIM's XML signature and its signer's chain to `root` (default: the pinned
    NVIDIA CoRIM signing Root CA) at `at`, and return what was signed. With `expected_id`,
    the RIM must also be the one that id names (kind and version)."""
    at = require_aware(at, "RIM verification time")
    data = _as_bytes(xml)
    document = _document(data)
    signature = _signature_element(document)
    _check_signed_info(signature)
    chain = verify_chain(_key_info_certificates(signature),
                         pinned_rim_root() if root is None else root, at)
    signed = _verify_xml_signature(data, chain[0], at)
    rim = _rim_from(signed, kind=kind, rim_id=expected_id)
    if expected_id is not None:
        check_rim_id(rim, expected_id)
    return replace(rim, chain=chain)


def embedded_certificates(xml: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates in a RIM's signature (KeyInfo/X509Data), unverified: to know how long
    a fetched RIM may be kept."""
    signature = _signature_element(_document(_as_bytes(xml)))
    return tuple(_key_info_certificates(signature))


def _signature_element(root: etree._Element) -> etree._Element:
    signatures = list(root.iter(_tag(DSIG_NS, "Signature")))
    if not signatures:
        raise VerificationFailed("RIM is not signed", expected="an enveloped ds:Signature",
                                 found="no ds:Signature element")
    if len(signatures) > 1 or signatures[0].getparent() is not root:
        raise VerificationFailed("RIM signature is not a single enveloped signature",
                                 expected="one ds:Signature, a child of SoftwareIdentity",
                                 found=f"{len(signatures)} ds:Signature element(s)")
    return signatures[0]


def _algorithm(parent: etree._Element | None, path: str) -> str | None:
    element = None if parent is None else parent.find(path)
    return None if element is None else element.get("Algorithm")


def _check_signed_info(signature: etree._Element) -> None:
    ds = f"{{{DSIG_NS}}}"
    info = signature.find(f"{ds}SignedInfo")
    references = [] if info is None else info.findall(f"{ds}Reference")
    reference = references[0] if len(references) == 1 else None
    transforms = [] if reference is None else [
        element.get("Algorithm") for element in reference.iterfind(f"{ds}Transforms/{ds}Transform")]
    found = {
        "canonicalization": _algorithm(info, f"{ds}CanonicalizationMethod"),
        "signature": _algorithm(info, f"{ds}SignatureMethod"),
        "references": len(references),
        "reference URI": None if reference is None else reference.get("URI"),
        "digest": _algorithm(reference, f"{ds}DigestMethod"),
        "transforms": transforms,
    }
    expected = {"canonicalization": C14N11, "signature": ECDSA_SHA384, "references": 1,
                "reference URI": "", "digest": SHA384, "transforms": [ENVELOPED, C14N11]}
    if found != expected and found != {**expected, "transforms": [ENVELOPED]}:
        wrong = {name: value for name, value in found.items() if value != expected[name]}
        raise VerificationFailed("RIM signature is not ecdsa-sha384 over the whole document "
                                 "with C14N 1.1", expected=expected, found=wrong)


def _key_info_certificates(signature: etree._Element) -> list[x509.Certificate]:
    ds = f"{{{DSIG_NS}}}"
    elements = signature.findall(f"{ds}KeyInfo/{ds}X509Data/{ds}X509Certificate")
    if not elements:
        raise VerificationFailed("RIM signature carries no certificate",
                                 expected="KeyInfo/X509Data/X509Certificate")
    if len(elements) > MAX_CHAIN:
        raise VerificationFailed("RIM signature carries too many certificates",
                                 expected=f"<= {MAX_CHAIN}", found=len(elements))
    return [_certificate(element.text or "") for element in elements]


def _certificate(text: str) -> x509.Certificate:
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, *_CERT_ERRORS) as exc:
        raise MalformedEvidence("certificate in the RIM signature does not parse",
                                expected="base64 of a DER X.509 certificate",
                                found=str(exc)) from None


def _verify_xml_signature(data: bytes, signer: x509.Certificate,
                          at: datetime) -> etree._Element:
    config = SignatureConfiguration(
        require_x509=True, location="./", expect_references=1,
        signature_methods=frozenset({SignatureMethod.ECDSA_SHA384}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA384}),
        ignore_ambiguous_key_info=False, verification_time=at,
        default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_1)
    try:
        result = XMLVerifier().verify(data, x509_cert=signer, expect_config=config,
                                      parser=_parser())
    except _SIGNXML_ERRORS as exc:
        raise VerificationFailed("RIM XML signature does not verify",
                                 found=f"{type(exc).__name__}: {exc}") from None
    signed = result.signed_xml  # type: ignore[union-attr]
    if signed is None:
        raise VerificationFailed("RIM signature covers no XML element")
    return signed


# --- the certificate chain ----------------------------------------------------------------------

def _subject(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return "<unreadable subject>"


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, *_CERT_ERRORS):
        return False
    return True


def verify_chain(certificates: Sequence[x509.Certificate], root: x509.Certificate,
                 at: datetime) -> tuple[x509.Certificate, ...]:
    """The path from the signer (the first certificate) to `root`, through the others in any
    order, each signature and validity window checked at `at`. A root the signature carries
    is never trusted: the path ends at the `root` given."""
    at = require_aware(at, "certificate validation time")
    if not isinstance(root, x509.Certificate):
        raise ConfigError("trusted RIM root must be an x509.Certificate",
                          found=type(root).__name__)
    if not certificates:
        raise VerificationFailed("no certificate to verify", expected="the RIM signer")
    path = [certificates[0]]
    pool = list(certificates[1:])
    while not _issued_by(path[-1], root):
        issuer = next((cert for cert in pool if _issued_by(path[-1], cert)), None)
        if issuer is None or len(path) >= MAX_CHAIN:
            raise VerificationFailed("RIM signer's chain does not reach the trusted root",
                                     expected=_subject(root),
                                     found=" <- ".join(_subject(cert) for cert in path))
        path.append(issuer)
        pool.remove(issuer)
    path.append(root)
    for cert in path:
        _check_validity(cert, at)
    _check_constraints(path)
    return tuple(path)


def _check_validity(cert: x509.Certificate, at: datetime) -> None:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not start <= at <= end:
        raise VerificationFailed(f"certificate {_subject(cert)} is not valid at {at.isoformat()}",
                                 expected=f"{start.isoformat()} .. {end.isoformat()}",
                                 found=at.isoformat(),
                                 hint="RIM signer certificates live 1-2 years: fetch a current "
                                      "RIM, or verify at the time the evidence was taken")


def _extension(cert: x509.Certificate, kind: type[_Ext]) -> _Ext | None:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except _CERT_ERRORS as exc:
        raise MalformedEvidence(f"certificate {_subject(cert)} has unreadable extensions",
                                found=str(exc)) from None


def _check_constraints(path: Sequence[x509.Certificate]) -> None:
    usage = _extension(path[0], x509.KeyUsage)
    if usage is not None and not usage.digital_signature:
        raise VerificationFailed("RIM signer may not sign", expected="KeyUsage digitalSignature",
                                 found=_subject(path[0]))
    for position, cert in enumerate(path[1:], start=1):
        _check_ca(cert, intermediates_below=position - 1)


def _check_ca(cert: x509.Certificate, *, intermediates_below: int) -> None:
    constraints = _extension(cert, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        raise VerificationFailed("issuer in the RIM chain is not a CA",
                                 expected="BasicConstraints CA:TRUE", found=_subject(cert))
    limit = constraints.path_length
    if limit is not None and intermediates_below > limit:
        raise VerificationFailed("RIM chain is longer than a CA allows",
                                 expected=f"pathLen {limit} under {_subject(cert)}",
                                 found=f"{intermediates_below} intermediate(s)")
    usage = _extension(cert, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise VerificationFailed("CA in the RIM chain may not sign certificates",
                                 expected="KeyUsage keyCertSign", found=_subject(cert))


# --- comparison with the SPDM measurements ------------------------------------------------------

def _checked(rim: Rim | None, kind: Kind, allow_unverified: bool) -> Rim | None:
    if rim is None:
        return None
    if not isinstance(rim, Rim):
        raise ConfigError(f"{kind} RIM must be a Rim", found=type(rim).__name__)
    if rim.kind != kind:
        raise VerificationFailed(f"RIM given as the {kind} RIM is a {rim.kind} RIM",
                                 expected=kind, found=f"{rim.kind} ({rim.id})")
    if not rim.verified and not allow_unverified:
        raise VerificationFailed(f"{kind} RIM was not verified", expected="a Rim from verify_rim",
                                 found=f"a parsed RIM ({rim.id})")
    return rim


def golden_measurements(driver: Rim | None, vbios: Rim | None) -> dict[int, Measurement]:
    """The active records of both RIMs by RIM index; VerificationFailed if they overlap."""
    golden: dict[int, Measurement] = dict(driver.active) if driver else {}
    theirs = vbios.active if vbios else {}
    overlap = sorted(set(golden) & set(theirs))
    if overlap:
        raise VerificationFailed("driver and VBIOS RIMs both claim the same measurements",
                                 expected="disjoint active indices", found=overlap)
    golden.update(theirs)
    return golden


def _block(blocks: Mapping[int, bytes], index: int) -> bytes | None:
    value = blocks.get(index)
    if value is not None and not isinstance(value, bytes | bytearray | memoryview):
        raise ConfigError("measurement blocks must be bytes", found=type(value).__name__)
    return None if value is None else bytes(value)


def _same_version(rim: Rim, reported: str) -> bool:
    if not isinstance(reported, str):
        raise ConfigError("reported version must be a string", found=type(reported).__name__)
    return rim.colloquial_version.strip().lower() == reported.strip().strip("\x00").lower()


def _rim_claims(rim: Rim | None, reported: str) -> dict[str, Any] | None:
    if rim is None:
        return None
    status = "verified" if rim.verified else "unverified"
    not_after = rim.not_after
    return {"id": rim.id, "tag_id": rim.tag_id, "version": rim.colloquial_version,
            "signature": status, "chain": status, "version_match": _same_version(rim, reported),
            "signer_not_after": None if not_after is None else not_after.isoformat()}


def compare(driver: Rim | None, vbios: Rim | None, blocks: Mapping[int, bytes], *,
            nvdec0_enabled: bool, driver_version: str, vbios_version: str,
            allow_unverified: bool = False) -> dict[str, Any]:
    """Compare the SPDM measurement blocks ({block index (from 1): value}) with the RIMs'
    active records. Returns the claims fragment
    {"matched", "mismatched", "missing", "skipped", "compared", "rim": {"driver", "vbios"}}:
    indices are RIM indices (block index - 1); "matched" is true when at least one RIM was
    given and every compared record matched; whether each RIM's version is the reported one
    is in rim.<kind>.version_match, for the policy to judge. RIMs must come from verify_rim
    unless `allow_unverified`."""
    if not isinstance(blocks, Mapping):
        raise ConfigError("measurement blocks must be a mapping {block index: bytes}",
                          found=type(blocks).__name__)
    driver = _checked(driver, "driver", allow_unverified)
    vbios = _checked(vbios, "vbios", allow_unverified)
    golden = golden_measurements(driver, vbios)
    skipped = [NVDEC0_INDEX] if not nvdec0_enabled and NVDEC0_INDEX in golden else []
    mismatched: list[int] = []
    missing: list[int] = []
    for index, measurement in sorted(golden.items()):
        if index in skipped:
            continue
        value = _block(blocks, index + 1)
        if value is None:
            missing.append(index)
        elif not measurement.matches(value):
            mismatched.append(index)
    given = driver is not None or vbios is not None
    return {"matched": given and not mismatched and not missing, "mismatched": mismatched,
            "missing": missing, "skipped": skipped, "compared": len(golden) - len(skipped),
            "rim": {"driver": _rim_claims(driver, driver_version),
                    "vbios": _rim_claims(vbios, vbios_version)}}


__all__ = [
    "Kind",
    "Measurement",
    "Rim",
    "RimIds",
    "check_rim_id",
    "compare",
    "embedded_certificates",
    "golden_measurements",
    "id_kind",
    "parse_rim",
    "pinned_rim_root",
    "rim_ids",
    "verify_chain",
    "verify_rim",
]
