"""Valid and broken `software` evidence."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization

from ..errors import MalformedEvidence, VerificationFailed
from ..evidence import Evidence, bind
from ..platforms.software.abi import SoftwareReport, parse_report
from ..platforms.software.collect import SoftwareAttester
from ..platforms.software.measure import MeasuredItem, measure_setting
from ..platforms.software.pki import Root, SiteCredentials, create_root, issue_site
from ..platforms.software.verify import SoftwareVerifier
from .cases import FIXED_NOW, BrokenCase


def default_test_items() -> list[MeasuredItem]:
    return [measure_setting("app", "federated-job v1"), measure_setting("python", "3.11")]


@dataclasses.dataclass
class SoftwareFixture:
    """A test root, one site and its attester; `evidence()` answers a fresh nonce."""

    root: Root
    site: SiteCredentials
    attester: SoftwareAttester
    now: datetime

    @classmethod
    def create(cls, identity: str = "site-1", *, now: datetime = FIXED_NOW,
               items: Sequence[MeasuredItem] | None = None, svn: int = 1,
               debug: bool = False, root: Root | None = None) -> SoftwareFixture:
        root = root or create_root(now)
        site = issue_site(root, identity, now)
        items = default_test_items() if items is None else items
        return cls(root, site, SoftwareAttester(site, items, svn=svn, debug=debug), now)

    def verifier(self) -> SoftwareVerifier:
        return SoftwareVerifier([self.root.certificate])

    def sibling(self, identity: str, **kwargs: object) -> SoftwareFixture:
        """Another site under the same root."""
        return SoftwareFixture.create(identity, now=self.now, root=self.root, **kwargs)

    @property
    def measurement(self) -> str:
        return self.attester.measurement.hex()

    def evidence(self, nonce: bytes | None = None, context: str = ""
                 ) -> tuple[Evidence, bytes, bytes]:
        """(evidence, the report_data it must bind, the nonce)."""
        nonce = nonce or secrets.token_bytes(32)
        report_data = bind(nonce, self.site.identity, context)
        return self.attester.collect(report_data), report_data, nonce

    def resign(self, report: SoftwareReport) -> bytes:
        """Sign a modified report with the real site key (a compromised-key scenario)."""
        return report.with_signature(self.site.key.sign(report.signed_bytes())).to_bytes()

    def broken_cases(self) -> list[BrokenCase]:
        evidence, report_data, _ = self.evidence()
        report = parse_report(evidence.report)
        raw = bytearray(evidence.report)
        cases: list[tuple[str, Evidence, type]] = []

        def with_report(data: bytes, **changes: object) -> Evidence:
            return dataclasses.replace(evidence, report=bytes(data), **changes)

        flipped = bytearray(raw)
        flipped[-1] ^= 0x01
        cases.append(("bad_signature", with_report(flipped), VerificationFailed))
        for name, offset in (("mutated_svn", 0x08), ("mutated_measurement", 0x10),
                             ("mutated_report_data", 0x40), ("mutated_key_id", 0xC0)):
            mutated = bytearray(raw)
            mutated[offset] ^= 0x80
            cases.append((name, with_report(mutated), VerificationFailed))
        debug_on = bytearray(raw)
        debug_on[0x06] |= 0x01
        cases.append(("mutated_debug_flag", with_report(debug_on), VerificationFailed))
        cases.append(("truncated", with_report(raw[:-1]), MalformedEvidence))
        cases.append(("oversized", with_report(raw + b"\0"), MalformedEvidence))
        cases.append(("empty", with_report(b""), MalformedEvidence))
        bad_magic = bytearray(raw)
        bad_magic[0] ^= 0xFF
        cases.append(("bad_magic", with_report(bad_magic), MalformedEvidence))
        reserved = bytearray(raw)
        reserved[0x0C] = 1
        cases.append(("reserved_bits", with_report(reserved), MalformedEvidence))

        other_root = SoftwareFixture.create(self.site.identity, now=self.now)
        foreign, _, _ = other_root.evidence()
        foreign = dataclasses.replace(foreign, report=other_root.resign(
            dataclasses.replace(parse_report(foreign.report), report_data=report_data)))
        cases.append(("wrong_root", foreign, VerificationFailed))

        other, _, _ = self.evidence()
        cases.append(("wrong_nonce", other, VerificationFailed))

        impostor = self.sibling("site-2")
        cert = impostor.site.certificate.public_bytes(serialization.Encoding.DER)
        cases.append(("swapped_certificate",
                      dataclasses.replace(evidence, endorsements={"site_cert": cert}),
                      VerificationFailed))
        cases.append(("missing_certificate", dataclasses.replace(evidence, endorsements={}),
                      MalformedEvidence))
        cases.append(("garbage_certificate",
                      dataclasses.replace(evidence, endorsements={"site_cert": b"\x30\x03abc"}),
                      MalformedEvidence))
        cases.append(("attester_mismatch", dataclasses.replace(evidence, attester="site-9"),
                      VerificationFailed))
        renamed = self.resign(dataclasses.replace(report, identity="site-2"))
        cases.append(("identity_mismatch", with_report(renamed), VerificationFailed))
        bad_log = ({"kind": "setting", "name": "app", "sha384": "00" * 48},)
        cases.append(("log_does_not_replay", dataclasses.replace(evidence, log=bad_log),
                      VerificationFailed))
        built = [BrokenCase(name, ev, report_data, self.now, error) for name, ev, error in cases]
        late = self.now + timedelta(days=400)  # past the site certificate's one-year life
        built.append(BrokenCase("expired_certificate", evidence, report_data, late,
                                VerificationFailed))
        early = self.now - timedelta(days=1)
        built.append(BrokenCase("not_yet_valid_certificate", evidence, report_data, early,
                                VerificationFailed))
        return built
