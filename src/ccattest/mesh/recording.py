"""Open a site's record from its CC config: the store, its keys, the journal, and the
witnessing role (the server's log is witnessed by every client).

Opening never stops a site: a record that cannot be opened (a corrupt or foreign file, a
database that does not answer, a missing key) leaves the journal disabled with the reason as
its failure, which is an alert, and with `record.required` also blocks jobs.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CCAttestError, ConfigError
from ..record.keys import NoteKeys, SiteKeys, note_keys, origin_for
from ..record.log import RECORD_FILE, SiteLog
from ..record.store import RecordStore
from ..record.witness import Witness, Witnessed
from ..tokens import SigningKey, load_jwks
from .agent import SiteAgent
from .config import CCConfig, RecordConfig
from .journal import Journal

log = logging.getLogger("ccattest.record")
RESULT_KEY_FILE = "result.key.pem"


@dataclass
class SiteRecord:
    journal: Journal
    config: RecordConfig | None = None
    keys: SiteKeys | None = None
    jwks: dict[str, Any] | None = None
    note_keys: NoteKeys | None = None
    result_key: SigningKey | None = None
    witness: Witness | None = None  # a client's witness of the server's log
    witnessed: Witnessed | None = None  # the server's side of witnessing
    location: str = ""
    problems: list[str] = field(default_factory=list)

    def close(self, at: Any = None) -> None:
        """A last checkpoint (at shutdown), then release the database."""
        if self.journal.log is not None:
            self.journal.checkpoint(at)
        self.journal.close()
        if self.journal.log is not None:
            self.journal.log.store.close()


def record_location(spec: RecordConfig, base: Path, site: str) -> str:
    """The site's record: SQLite in its local/cc/, or the database `record.url` names; a
    `{site}` in the URL is this site's name (one database a site: each holds one log)."""
    return spec.url.replace("{site}", site) if spec.url else str(base / RECORD_FILE)


def open_site_record(config: CCConfig, base: Path, agent: SiteAgent, *, server: str,
                     is_server: bool, config_text: bytes = b"",
                     on_failure: Callable[[str], None] | None = None) -> SiteRecord:
    spec = config.record
    if spec is None:
        return SiteRecord(Journal(None, config.site))
    journal = Journal(None, config.site, policy=agent.policy, required=spec.required,
                      keep_evidence=spec.keep_evidence, on_failure=on_failure)
    record = SiteRecord(journal, spec, location=record_location(spec, base, config.site))
    try:
        _open(record, config, base, server=server, is_server=is_server)
    except CCAttestError as error:
        journal.failure = f"{error}"[:300]
        log.error("ccattest: the record at %s is unusable: %s", record.location, error)
        if on_failure is not None:
            on_failure(journal.failure)
        return record
    journal.config(config_digest=hashlib.sha256(config_text).hexdigest(),
                   platforms=[a.platform for a in agent.attesters],
                   record={"checkpoint_every": spec.checkpoint_every,
                           "keep_evidence": spec.keep_evidence,
                           "required": spec.required})
    return record


def _open(record: SiteRecord, config: CCConfig, base: Path, *, server: str,
          is_server: bool) -> None:
    spec = record.config
    assert spec is not None
    key_dir = base / spec.key_dir
    keys = SiteKeys.load(key_dir)
    origin = origin_for(spec.federation, config.site)
    if keys.log.name != origin:
        raise ConfigError("the record's log key is named after another log",
                          expected=origin, found=keys.log.name,
                          hint="re-provision this site, or fix record.federation")
    jwks = load_jwks(base / spec.keys)
    found = note_keys(jwks)
    record.keys, record.jwks, record.note_keys = keys, jwks, found
    if is_server:  # every key is read before the database is opened
        try:
            record.result_key = SigningKey.from_pem((key_dir / RESULT_KEY_FILE).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read the receipt signing key {key_dir / RESULT_KEY_FILE}",
                              found=exc.strerror or type(exc).__name__) from None
    store = RecordStore.open(record.location, origin=origin, create=True)
    try:
        site_log = SiteLog(store, keys.log, checkpoint_every=spec.checkpoint_every)
    except CCAttestError:
        store.close()
        raise
    record.journal.log = site_log
    if is_server:
        witnesses = {name: key for name, key in found.witnesses.items() if name != config.site}
        record.witnessed = Witnessed(site_log, witnesses)
    else:
        record.witness = Witness(store, keys.witness,
                                 found.log(origin_for(spec.federation, server)),
                                 run=record.journal.now)
