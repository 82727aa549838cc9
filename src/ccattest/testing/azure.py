"""Synthetic Azure CVM evidence: HCL reports (SNP or TDX) around a test attestation key, TPM
quotes it signs, and broken variants of every layer. Built on the SNP and TDX fixtures."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import CollateralUnavailable, MalformedEvidence, VerificationFailed
from ..evidence import Evidence
from ..platforms.azure import PLATFORM_SNP, PLATFORM_TDX
from ..platforms.azure.hcl import HashType, HclReport, ReportType
from ..platforms.azure.tpm import TPM_ALG_SHA256, Attest, ClockInfo, PcrSelection
from ..platforms.azure.vtpm import (
    PCRS,
    TD_QUOTE,
    TDX_COLLATERAL,
    TPM_QUOTE,
    TPM_SIGNATURE,
    AzureCvmVerifier,
)
from ..platforms.tdx.abi import TdReport
from ..platforms.tdx.collateral_json import collateral_to_json
from .cases import FIXED_NOW, BrokenCase
from .snp import SnpFixture
from .tdx import TdxFixture

_TD_FIELDS = ("mr_td", "td_attributes", "xfam", "mr_config_id", "mr_owner", "mr_owner_config",
              "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_seam", "mr_signer_seam",
              "seam_attributes", "tee_tcb_svn")
NV_SIZE = 2600  # the HCL report NV index size seen on Azure


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(key: rsa.RSAPublicKey, kid: str) -> dict[str, Any]:
    numbers = key.public_numbers()
    return {"kid": kid, "key_ops": ["sign"], "kty": "RSA", "e": b64url_uint(numbers.e),
            "n": b64url_uint(numbers.n)}


def default_pcrs() -> list[bytes]:
    return [hashlib.sha256(bytes([index])).digest() for index in range(24)]


@dataclasses.dataclass
class AzureFixture:
    """One Azure CVM: its hardware (SNP or TDX fixture), its vTPM AK, its PCRs."""

    platform: str
    ak: rsa.RSAPrivateKey
    snp: SnpFixture | None
    tdx: TdxFixture | None
    pcrs: list[bytes]
    now: datetime

    @classmethod
    def create(cls, platform: str = PLATFORM_SNP, *, now: datetime = FIXED_NOW) -> AzureFixture:
        ak = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        snp = SnpFixture.create("Milan", now=now) if platform == PLATFORM_SNP else None
        tdx = TdxFixture.create(now=now) if platform == PLATFORM_TDX else None
        return cls(platform, ak, snp, tdx, default_pcrs(), now)

    # --- the HCL report -----------------------------------------------------------------------

    def runtime_data(self, *, ak: rsa.RSAPublicKey | None = None, kid: str = "HCLAkPub",
                     **vm_configuration: Any) -> bytes:
        config = {"console-enabled": False, "secure-boot": True, "tpm-enabled": True,
                  "vmUniqueId": "00000000-0000-0000-0000-000000000001", **vm_configuration}
        document = {"keys": [jwk(ak or self.ak.public_key(), kid)],
                    "vm-configuration": config, "user-data": "00" * 64}
        return json.dumps(document, separators=(",", ":")).encode()

    def hcl(self, runtime: bytes | None = None, *, report_data: bytes | None = None,
            **hardware: Any) -> HclReport:
        runtime = runtime if runtime is not None else self.runtime_data()
        bound = report_data if report_data is not None else (
            hashlib.sha256(runtime).digest() + bytes(32))
        kind = ReportType.SNP if self.snp is not None else ReportType.TDX
        report = HclReport(self.hardware_report(bound, **hardware), runtime, kind,
                           HashType.SHA256, nv_size=NV_SIZE)
        return report

    def hardware_report(self, report_data: bytes, **changes: Any) -> bytes:
        if self.snp is not None:
            return self.snp.sign(self.snp.report(report_data, **changes))
        return self.tdreport(report_data, **changes).to_bytes().ljust(0x4A0, b"\0")

    def tdreport(self, report_data: bytes, **changes: Any) -> TdReport:
        assert self.tdx is not None
        body = self.tdx.body(report_data)
        fields = {name: getattr(body, name) for name in _TD_FIELDS}
        return dataclasses.replace(TdReport(report_data=report_data, **fields), **changes)

    def td_quote(self, report_data: bytes, **body_changes: Any) -> bytes:
        assert self.tdx is not None
        return self.tdx.quote(report_data, **body_changes).to_bytes()

    # --- the TPM quote --------------------------------------------------------------------------

    def attest(self, nonce: bytes, *, pcrs: list[bytes] | None = None,
               pcr_digest: bytes | None = None) -> Attest:
        digest = pcr_digest or hashlib.sha256(b"".join(pcrs or self.pcrs)).digest()
        return Attest(qualified_signer=b"\x00\x0b" + bytes(range(32)), extra_data=nonce,
                      clock_info=ClockInfo(123456, 2, 0, True),
                      firmware_version=0x2020031200120003,
                      pcr_selections=(PcrSelection(TPM_ALG_SHA256, tuple(range(24))),),
                      pcr_digest=digest)

    def sign(self, message: bytes, key: rsa.RSAPrivateKey | None = None) -> bytes:
        return (key or self.ak).sign(message, padding.PKCS1v15(), hashes.SHA256())

    def endorsements(self, nonce: bytes, hcl: HclReport, *, attest: Attest | None = None
                     ) -> dict[str, bytes]:
        message = (attest or self.attest(nonce)).to_bytes()
        endorsements = {TPM_QUOTE: message, TPM_SIGNATURE: self.sign(message),
                        PCRS: json.dumps([pcr.hex() for pcr in self.pcrs]).encode()}
        if self.snp is not None:
            endorsements.update(self.snp.endorsements())
        else:
            assert self.tdx is not None
            endorsements[TD_QUOTE] = self.td_quote(hcl.hardware_report[0x80:0xC0])
            endorsements[TDX_COLLATERAL] = collateral_to_json(self.tdx.collateral())
        return endorsements

    def evidence(self, nonce: bytes | None = None) -> tuple[Evidence, bytes]:
        nonce = nonce or secrets.token_bytes(32)
        hcl = self.hcl()
        return Evidence(self.platform, hcl.to_bytes(), self.endorsements(nonce, hcl)), nonce

    def verifier(self, **kwargs: Any) -> AzureCvmVerifier:
        if self.snp is not None:
            return AzureCvmVerifier(self.platform, snp_verifier=self.snp.verifier(), **kwargs)
        assert self.tdx is not None
        return AzureCvmVerifier(self.platform, tdx_verifier=self.tdx.verifier(),
                                tdx_root=self.tdx.root, **kwargs)

    # --- broken evidence ------------------------------------------------------------------------

    def broken_cases(self) -> list[BrokenCase]:
        evidence, nonce = self.evidence()
        cases = [*self._hcl_cases(evidence), *self._tpm_cases(evidence, nonce)]
        cases += self._tdx_cases(evidence) if self.tdx is not None else []
        built = [BrokenCase(name, ev, nonce, self.now, error) for name, ev, error in cases]
        built.append(BrokenCase("wrong_nonce", evidence, secrets.token_bytes(32), self.now,
                                VerificationFailed))
        return built

    def _hcl_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        raw = evidence.report

        def report(data: bytes) -> Evidence:
            return dataclasses.replace(evidence, report=data)

        def rebuilt(hcl: HclReport) -> Evidence:
            endorsements = dict(evidence.endorsements)
            if self.tdx is not None:  # a TD quote for the new TDREPORT
                endorsements[TD_QUOTE] = self.td_quote(hcl.hardware_report[0x80:0xC0])
            return Evidence(self.platform, hcl.to_bytes(), endorsements)

        def flipped(offset: int) -> Evidence:
            data = bytearray(raw)
            data[offset] ^= 0x01
            return report(bytes(data))

        other_ak = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        runtime_offset = 0x4D4
        return [
            ("hcl_truncated", report(raw[:0x4D0]), MalformedEvidence),
            ("hcl_bad_signature", flipped(0), MalformedEvidence),
            ("hcl_runtime_mutated", flipped(runtime_offset + 10), VerificationFailed),
            ("hcl_hardware_report_not_bound", rebuilt(self.hcl(report_data=bytes(64))),
             VerificationFailed),
            ("hcl_other_ak", rebuilt(self.hcl(self.runtime_data(ak=other_ak.public_key()))),
             VerificationFailed),
            ("hcl_no_ak", rebuilt(self.hcl(self.runtime_data(kid="other"))), MalformedEvidence),
            ("hcl_runtime_not_json", rebuilt(self.hcl(b"not json")), MalformedEvidence),
        ]

    def _tpm_cases(self, evidence: Evidence, nonce: bytes) -> list[tuple[str, Evidence, type]]:
        def endorsed(**changes: bytes) -> Evidence:
            return dataclasses.replace(evidence, endorsements={**evidence.endorsements,
                                                               **changes})

        def signed(attest: Attest) -> Evidence:
            message = attest.to_bytes()
            return endorsed(tpm_quote=message, tpm_signature=self.sign(message))

        message = evidence.endorsements[TPM_QUOTE]
        flipped = bytearray(message)
        flipped[-1] ^= 1
        signature = bytearray(evidence.endorsements[TPM_SIGNATURE])
        signature[0] ^= 1
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pcrs = [pcr.hex() for pcr in self.pcrs]
        no_quote = {k: v for k, v in evidence.endorsements.items() if k != TPM_QUOTE}
        return [
            ("tpm_quote_mutated", endorsed(tpm_quote=bytes(flipped)), VerificationFailed),
            ("tpm_quote_truncated", endorsed(tpm_quote=message[:-1]), MalformedEvidence),
            ("tpm_signature_mutated", endorsed(tpm_signature=bytes(signature)),
             VerificationFailed),
            ("tpm_signed_by_other_key", endorsed(tpm_signature=self.sign(message, other)),
             VerificationFailed),
            ("tpm_other_nonce", signed(self.attest(secrets.token_bytes(32))),
             VerificationFailed),
            ("tpm_pcr_digest_differs", signed(self.attest(nonce, pcr_digest=bytes(32))),
             VerificationFailed),
            ("pcr_value_changed", endorsed(pcrs=json.dumps(["00" * 32, *pcrs[1:]]).encode()),
             VerificationFailed),
            ("pcr_value_missing", endorsed(pcrs=json.dumps(pcrs[:-1]).encode()),
             MalformedEvidence),
            ("pcrs_not_json", endorsed(pcrs=b"[\"00"), MalformedEvidence),
            ("tpm_quote_missing", dataclasses.replace(evidence, endorsements=no_quote),
             MalformedEvidence),
        ]

    def _tdx_cases(self, evidence: Evidence) -> list[tuple[str, Evidence, type]]:
        report_data = evidence.report[0x80:0xC0]

        def quote(data: bytes) -> Evidence:
            return dataclasses.replace(evidence, endorsements={**evidence.endorsements,
                                                               TD_QUOTE: data})

        raw = evidence.endorsements[TD_QUOTE]
        broken = bytearray(raw)
        broken[640] ^= 1  # in the quote's ECDSA signature
        no_collateral = {k: v for k, v in evidence.endorsements.items() if k != TDX_COLLATERAL}
        no_quote = {k: v for k, v in evidence.endorsements.items() if k != TD_QUOTE}
        return [
            ("td_quote_report_data_differs", quote(self.td_quote(bytes(64))),
             VerificationFailed),
            ("td_quote_mrtd_differs", quote(self.td_quote(report_data, mr_td=bytes(48))),
             VerificationFailed),
            ("td_quote_signature_broken", quote(bytes(broken)), VerificationFailed),
            ("td_quote_missing", dataclasses.replace(evidence, endorsements=no_quote),
             MalformedEvidence),
            ("tdx_collateral_missing", dataclasses.replace(evidence, endorsements=no_collateral),
             CollateralUnavailable),
        ]


def trustee_json(evidence: Evidence, *, version: int = 1) -> Mapping[str, Any]:
    """`evidence` in the trustee az-*-vtpm JSON shapes (v0 byte arrays, v1/v2 text)."""
    endorsements = evidence.endorsements
    pcrs = json.loads(endorsements[PCRS])
    if version == 0:
        quote = {"message": list(endorsements[TPM_QUOTE]),
                 "signature": list(endorsements[TPM_SIGNATURE]),
                 "pcrs": [list(bytes.fromhex(pcr)) for pcr in pcrs]}
        data: dict[str, Any] = {"hcl_report": list(evidence.report), "tpm_quote": quote}
        if TD_QUOTE in endorsements:
            data["td_quote"] = list(endorsements[TD_QUOTE])
        return data

    def text(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    data = {"version": version, "hcl_report": text(evidence.report),
            "tpm_quote": {"message": endorsements[TPM_QUOTE].hex(),
                          "signature": endorsements[TPM_SIGNATURE].hex(), "pcrs": pcrs}}
    if TD_QUOTE in endorsements:
        data["td_quote"] = text(endorsements[TD_QUOTE])
    return data
