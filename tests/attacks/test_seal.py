"""Attacks on sealed models (seal/): a relayer that passes attestation with another TEE's
evidence still cannot open what is sealed to the key that evidence bound."""

from __future__ import annotations

import pytest

from ccattest.evidence import Evidence
from ccattest.mesh.agent import SiteAgent
from ccattest.mesh.roster import Roster, SiteSpec
from ccattest.mesh.trustbook import TrustBook
from ccattest.policy import Policy, SnpPolicy
from ccattest.seal.envelope import SealContext, SealedPayloadInvalid, open_sealed, seal
from ccattest.seal.keys import SealingKeys, SuiteName

from .catalog import attack

MEASUREMENT = bytes(range(48)).hex()  # what SnpFixture guests measure


class _Guest:
    """A genuine SEV-SNP guest: signs whatever report_data the software inside asks for."""

    platform = "snp"

    def __init__(self, fixture) -> None:
        self.fixture = fixture

    def collect(self, report_data: bytes) -> Evidence:
        return Evidence("snp", self.fixture.sign(self.fixture.report(report_data)),
                        self.fixture.endorsements())


@attack("evidence relayed from another TEE to receive sealed models",
        does="a stolen startup kit on a machine without a TEE relays every challenge, under "
             "its own site name, to ccattest running in a genuine TEE, passes attestation and "
             "waits for the model",
        stopped_by="the genuine TEE binds its own in-memory sealing key into report_data; "
                   "the relayer must present that key (any other breaks the binding), so "
                   "models are sealed to a key only the TEE's process holds (on real NVFlare: "
                   "tests/e2e/test_sealing.py::"
                   "test_a_relayer_passes_attestation_but_cannot_open_the_model)")
def test_a_relayer_passes_attestation_but_cannot_open_the_model(milan) -> None:
    roster = Roster([SiteSpec("server", platforms=("snp",)),
                     SiteSpec("site-2", platforms=("snp",))])
    policy = Policy(id="attacks", snp=SnpPolicy(measurements=[MEASUREMENT]))
    at = milan.now
    # ccattest inside a genuine TEE, fed the stolen kit's name: its key never leaves it.
    tee_keys = SealingKeys(SuiteName.MLKEM768_X25519, at)
    inside = SiteAgent("site-2", [_Guest(milan)], {}, Policy(), roster, sealing=tee_keys)
    relayer_keys = SealingKeys(SuiteName.MLKEM768_X25519, at)  # what the relayer holds
    server = SiteAgent("server", [], {"snp": milan.verifier()}, policy, roster)
    trust = TrustBook("server")
    nonce, context = b"r" * 32, "ccattest/round/relay"
    relayed, tee_key = inside.collect_bound(nonce, context, at)

    own = relayer_keys.current(at).public  # presenting its own key breaks the binding
    refused = server.judge("site-2", relayed, nonce=nonce, context=context, at=at,
                           seal_key=own)
    assert not refused.affirming
    assert any("report_data does not bind" in f for f in refused.failures())

    passed = server.judge("site-2", relayed, nonce=nonce, context=context, at=at,
                          seal_key=tee_key)
    assert passed.affirming  # attestation alone cannot tell: the TEE is genuine
    trust.record(passed, definitive=True)
    recipient = trust.sealing_key("site-2", at)
    assert recipient == tee_key != own
    job = SealContext("job-1", "train", 1, "server", "site-2")
    model = seal(b"global model weights", recipient, job)
    with pytest.raises(SealedPayloadInvalid, match="for another key"):
        open_sealed(model, relayer_keys.openers(at), job)
    assert open_sealed(model, tee_keys.openers(at), job) == b"global model weights"
