"""The record growth benchmark (benchmarks/bench_record.py), small: 20 rounds of 10 sites,
so its code cannot rot between `make bench` runs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import bench_record

from ccattest.record import note
from ccattest.record.audit import audit
from ccattest.record.keys import SiteKeys
from ccattest.record.store import RecordStore

ROUNDS, SITES = 20, 10
LATER = datetime(2100, 1, 1, tzinfo=UTC)


def test_bytes_per_round_writes_every_row_and_the_records_audit(tmp_path: Path) -> None:
    empty = SiteKeys.generate("bench", "empty")
    RecordStore.open(tmp_path / "empty.sqlite3", origin=empty.log.name).close()
    empty_bytes = (tmp_path / "empty.sqlite3").stat().st_size
    messages: list[str] = []

    result = bench_record.bytes_per_round(ROUNDS, SITES, directory=tmp_path,
                                          progress=messages.append)

    assert result["rounds"] == ROUNDS and result["sites"] == SITES
    assert messages and f"round {ROUNDS}/{ROUNDS}" in messages[-1]
    server, client = result["server"], result["client"]
    cosigned_sizes = []
    for site in (server, client):
        assert site["bytes"] > empty_bytes  # the database grew
        assert site["bytes_per_round"] == site["bytes"] / ROUNDS
        assert site["kinds"]["round"] == ROUNDS
        assert site["kinds"]["verdict"] >= SITES - 1  # at start-up, then changes
        assert site["kinds"]["receipt"] == 2  # one job admitted and closed in 20 rounds
        with RecordStore.open(site["path"], origin=site["origin"], create=False) as store:
            stored = store.entries()
            assert len(stored) == site["entries"] == site["appends"]
            assert Counter(entry.kind for entry in stored) == site["kinds"]
            checkpoints = store.checkpoints()
            assert len(checkpoints) == site["checkpoints"]
            report = audit(store, note.Verifier.parse(site["log_key"]))
            assert (report.size, report.signatures_checked) == (site["entries"],
                                                                len(checkpoints))
            if site is server:
                witness = note.Verifier.parse(client["witness_key"])
                rows = 0
                for checkpoint in checkpoints:
                    cosignatures = store.cosignatures(checkpoint.size)
                    rows += len(cosignatures)
                    if cosignatures:
                        cosigned_sizes.append(checkpoint.size)
                    for cosignature in cosignatures:
                        if cosignature.witness == bench_record.CLIENT:  # real every round
                            data = (checkpoint.note + cosignature.line).encode("utf-8")
                            checked = note.verify_cosignature(data, witness, now=LATER)
                            assert checked.timestamp == cosignature.timestamp
                assert rows == server["cosignatures"] == ROUNDS * (SITES - 1)
                assert len(cosigned_sizes) == ROUNDS
            else:
                witnessed = store.witnessed(server["origin"])
                assert witnessed is not None and witnessed.size == max(cosigned_sizes)
                assert witnessed.note.startswith(server["origin"] + "\n")
    baseline = result["baseline"]
    assert baseline["inserts"] == server["appends"] + client["appends"]
    assert baseline["bytes"] > 0


def test_round_measurements_run_on_a_small_federation() -> None:
    from benchmarks.bench_record import round_seconds, verify_step

    step = verify_step(clients=2, repeats=2)
    assert set(step) == {"none", "behind", "inline", "witness"}
    assert all(value > 0 for value in step.values())
    walls, cpu = round_seconds(2, 2, with_record=True, collect_delay=0.0)
    assert len(walls) == 2 and cpu > 0
