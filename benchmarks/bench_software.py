"""The software platform and the core around it, each beside the bare primitive it rests on."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ccattest.freshness import ChallengeIssuer
from ccattest.pipeline import verify_and_appraise
from ccattest.platforms.nvgpu.abi import parse_report as parse_gpu_report
from ccattest.platforms.snp.abi import parse_report as parse_snp_report
from ccattest.platforms.software.abi import SIGNED_SIZE, parse_report
from ccattest.policy import Policy, SoftwarePolicy
from ccattest.testing import SoftwareFixture
from ccattest.testing.nvgpu import NvgpuFixture
from ccattest.testing.snp import SnpFixture
from ccattest.testing.tdx import TdxFixture
from ccattest.tokens import KeySet, SigningKey, jwks, sign_results, verify_token

from .harness import Row, compare


def rows() -> list[Row]:
    fixture = SoftwareFixture.create()
    verifier = fixture.verifier()
    evidence, report_data, _ = fixture.evidence()
    report = parse_report(evidence.report)
    public_key = fixture.site.key.public_key()
    signed, signature = evidence.report[:SIGNED_SIZE], report.signature
    policy = Policy(software=SoftwarePolicy(allow=True, measurements=[fixture.measurement]))
    at = fixture.now

    def bare_ed25519() -> None:
        public_key.verify(signature, signed)

    result = verify_and_appraise(evidence, verifier, policy, report_data=report_data, at=at)
    key = SigningKey.generate("ES256")
    key_set = KeySet(jwks([key]))
    token = sign_results([result], key, issued_at=at)
    ecdsa_message = token.rsplit(".", 1)[0].encode()
    ecdsa_signature = key.private_key.sign(ecdsa_message, ec.ECDSA(hashes.SHA256()))

    def bare_p256() -> None:
        key.public_key.verify(ecdsa_signature, ecdsa_message, ec.ECDSA(hashes.SHA256()))

    issuer = ChallengeIssuer()

    def challenge_round_trip() -> None:
        issuer.redeem(issuer.issue("bench", at=at).nonce, "bench", at=at)

    snp = SnpFixture.create("Milan")
    snp_verifier = snp.verifier()
    snp_evidence, snp_report_data, _ = snp.evidence()
    snp_report = parse_snp_report(snp_evidence.report)
    vcek_key = snp.leaf.public_key()
    snp_signature = encode_dss_signature(snp_report.signature_r, snp_report.signature_s)
    snp_signed = snp_report.signed_bytes()

    def bare_p384() -> None:
        vcek_key.verify(snp_signature, snp_signed, ec.ECDSA(hashes.SHA384()))

    tdx = TdxFixture.create()
    tdx_verifier = tdx.verifier(tdx.collateral())
    tdx_evidence, tdx_report_data, _ = tdx.evidence()
    p256 = ec.generate_private_key(ec.SECP256R1())
    message = b"q" * 632
    p256_signature = p256.sign(message, ec.ECDSA(hashes.SHA256()))

    def two_bare_p256() -> None:
        for _ in range(2):
            p256.public_key().verify(p256_signature, message, ec.ECDSA(hashes.SHA256()))

    gpu = NvgpuFixture.create()
    gpu_verifier = gpu.verifier()
    gpu_evidence, gpu_nonce = gpu.evidence()
    gpu_report = parse_gpu_report(gpu_evidence.report)
    gpu_key = gpu.leaf.public_key()
    gpu_signature = encode_dss_signature(*gpu_report.signature_rs)
    gpu_signed = gpu_report.signed_bytes()

    def bare_gpu_p384() -> None:
        gpu_key.verify(gpu_signature, gpu_signed, ec.ECDSA(hashes.SHA384()))

    return [
        compare("GPU report verify (chain cached)", lambda: gpu_verifier.verify(
            gpu_evidence, report_data=gpu_nonce, at=gpu.now), "bare ECDSA P-384 verify",
            bare_gpu_p384),
        compare("TDX verify (collateral cached)", lambda: tdx_verifier.verify(
            tdx_evidence, report_data=tdx_report_data, at=tdx.now), "two bare ECDSA P-256 "
            "verifies", two_bare_p256),
        compare("SNP verify (chain cached)", lambda: snp_verifier.verify(
            snp_evidence, report_data=snp_report_data, at=at), "bare ECDSA P-384 verify",
            bare_p384),
        compare("software verify", lambda: verifier.verify(
            evidence, report_data=report_data, at=at), "bare Ed25519 verify", bare_ed25519),
        compare("software verify + appraise", lambda: verify_and_appraise(
            evidence, verifier, policy, report_data=report_data, at=at),
            "bare Ed25519 verify", bare_ed25519),
        compare("EAR token verify (ES256)", lambda: verify_token(token, key_set, at=at),
                "bare ECDSA P-256 verify", bare_p256),
        compare("challenge issue + redeem", challenge_round_trip,
                "bare Ed25519 verify", bare_ed25519),
    ]
