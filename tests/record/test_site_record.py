"""Provisioned sites keeping their records in PostgreSQL (one database a site, through the
`{site}` in record.url), written by the journal and audited through the URL by the CLI."""

from __future__ import annotations

from pathlib import Path

from ccattest.mesh.agent import SiteVerdict
from ccattest.mesh.config import build_agent, load_cc_config
from ccattest.mesh.recording import open_site_record
from ccattest.provisioning import FederationRequest, SiteRequest, provision
from ccattest.record.audit import audit
from ccattest.record.keys import note_keys
from ccattest.record.store import RecordStore
from ccattest.testing.postgres import PostgresServer
from ccattest.timeutil import utcnow
from ccattest.tokens import load_jwks
from tests.cli_process import ccattest

SITES = ("server", "site-1")


def test_every_site_keeps_its_own_log_in_postgresql(tmp_path: Path,
                                                    postgres: PostgresServer) -> None:
    for site in SITES:  # the operator makes one database a site
        postgres.create_database(f"records_{site}")
    template = postgres.url("records_{site}")
    bundles = {site: tmp_path / site / "local" / "cc" for site in SITES}
    provision(FederationRequest([SiteRequest(site) for site in SITES], federation="fed-pg",
                                record_url=template), bundles, tmp_path / "root", utcnow())
    records = {}
    for site in SITES:
        config, base = load_cc_config(bundles[site] / "cc_config.yaml")
        record = open_site_record(config, base, build_agent(config, base), server="server",
                                  is_server=site == "server",
                                  config_text=(bundles[site] / "cc_config.yaml").read_bytes())
        assert record.journal.enabled, record.journal.failure
        assert record.location.startswith("postgresql")
        record.journal.verdict(SiteVerdict("site-1" if site == "server" else "server",
                                           utcnow()), [], context="registration/hello",
                               definitive=False)
        records[site] = record
    for record in records.values():
        record.close()
    keys = load_jwks(bundles["server"] / "federation.jwks.json")
    found = note_keys(keys)
    for site in SITES:
        url = postgres.url(f"records_{site}")
        with RecordStore.open(url, origin=None, create=False) as store:
            report = audit(store, found.log(store.origin))
            assert report.size == 2 and report.checkpoints == 1  # config, verdict; shutdown
        result = ccattest("audit", "verify", url, "--jwks",
                          str(bundles["server"] / "federation.jwks.json"), cwd=tmp_path)
        assert result.returncode == 0 and ": intact" in result.stdout, result.stderr
