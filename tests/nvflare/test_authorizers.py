import base64
import json
from datetime import UTC, datetime

import pytest

pytest.importorskip("nvflare")

from nvflare.app_opt.confidential_computing.cc_authorizer import CCAuthorizer

from ccattest.nvflare.authorizers import (
    ACIAuthorizer,
    AzureCVMAuthorizer,
    GPUAuthorizer,
    SNPAuthorizer,
    SoftwareAuthorizer,
    TDXAuthorizer,
)
from ccattest.provisioning import FederationRequest, SiteRequest, provision


@pytest.fixture
def bundles(tmp_path):
    request = FederationRequest([SiteRequest("server"), SiteRequest("site-1")])
    dirs = {s.name: tmp_path / s.name / "local" / "cc" for s in request.sites}
    provision(request, dirs, tmp_path / "root", datetime.now(UTC))
    return dirs


def _authorizer(bundles, site):
    return SoftwareAuthorizer(cc_config=str(bundles[site] / "cc_config.yaml"))


def test_stock_ccmanager_interface_round_trip(bundles):
    client, server = _authorizer(bundles, "site-1"), _authorizer(bundles, "server")
    assert isinstance(server, CCAuthorizer)
    assert server.get_namespace() == "x-ccattest-software"
    token = client.generate()
    assert server.verify(token)
    assert not server.verify(token)  # once only


def test_tokens_that_must_fail(bundles):
    client, server = _authorizer(bundles, "site-1"), _authorizer(bundles, "server")
    body = json.loads(base64.urlsafe_b64decode(client.generate()))
    relabelled = dict(body, site="server")  # NVFlare's module accepts relabelled tokens
    assert not server.verify(base64.urlsafe_b64encode(json.dumps(relabelled).encode()).decode())
    old = dict(json.loads(base64.urlsafe_b64decode(client.generate())),
               time="2020-01-01T00:00:00+00:00")
    assert not server.verify(base64.urlsafe_b64encode(json.dumps(old).encode()).decode())
    for garbage in ("", "!!!", base64.urlsafe_b64encode(b"[]").decode(), 42):
        assert not server.verify(garbage)
    (bundles["site-1"] / "workload.txt").write_text("site=site-1\nbackdoor=1\n")
    assert not server.verify(client.generate())


def test_snp_authorizer_without_snp_evidence_refuses(bundles):
    snp = SNPAuthorizer(cc_config=str(bundles["server"] / "cc_config.yaml"))
    assert snp.get_namespace() == "x-ccattest-snp"
    token = _authorizer(bundles, "site-1").generate()  # software evidence only
    assert not snp.verify(token)


def test_every_platform_has_an_authorizer_namespace(bundles):
    config = str(bundles["server"] / "cc_config.yaml")
    names = {cls(cc_config=config).get_namespace() for cls in
             (SoftwareAuthorizer, SNPAuthorizer, TDXAuthorizer, GPUAuthorizer,
              AzureCVMAuthorizer, ACIAuthorizer)}
    assert names == {"x-ccattest-software", "x-ccattest-snp", "x-ccattest-tdx",
                     "x-ccattest-nvgpu", "x-ccattest-azure-snp", "x-ccattest-maa"}
    assert AzureCVMAuthorizer(cc_config=config).accepted == ("azure-snp", "azure-tdx")
