import stat

import pytest

from ccattest.errors import ConfigError, MalformedEvidence
from ccattest.platforms.software.collect import SoftwareAttester, default_items
from ccattest.platforms.software.measure import (
    ZERO,
    MeasuredItem,
    extend,
    measure_file,
    measure_setting,
    replay,
)
from ccattest.platforms.software.pki import KeyDir, check_identity, load_certificate
from ccattest.testing.cases import FIXED_NOW


def test_key_dir_creates_once_and_reloads(tmp_path):
    keys = KeyDir(tmp_path / "dev")
    site = keys.ensure_site("site-1", FIXED_NOW)
    again = keys.ensure_site("site-1", FIXED_NOW)
    assert site.certificate == again.certificate
    assert keys.root_certificate().subject == site.certificate.issuer
    key_file = tmp_path / "dev" / "sites" / "site-1" / "site.key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "dev" / "root.key.pem").stat().st_mode) == 0o600


def test_key_dir_errors(tmp_path):
    keys = KeyDir(tmp_path / "none")
    with pytest.raises(ConfigError, match="cannot read certificate") as info:
        keys.root_certificate()
    assert "ccattest collect" in (info.value.hint or "")
    (tmp_path / "bad.pem").write_bytes(b"not a cert")
    with pytest.raises(ConfigError, match=r"not an X\.509 certificate"):
        load_certificate(tmp_path / "bad.pem")
    keys = KeyDir(tmp_path / "dev")
    keys.ensure_root(FIXED_NOW)
    (tmp_path / "dev" / "root.key.pem").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot load private key"):
        keys.ensure_root(FIXED_NOW)


def test_key_dir_refuses_a_non_ed25519_key(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    keys = KeyDir(tmp_path / "dev")
    keys.ensure_root(FIXED_NOW)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    (tmp_path / "dev" / "root.key.pem").write_bytes(pem)
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        keys.ensure_root(FIXED_NOW)


@pytest.mark.parametrize("bad", ["", "-lead", "a" * 65, "has space", "../up", "x/y"])
def test_identity_rules(bad):
    with pytest.raises(ConfigError, match="invalid site identity"):
        check_identity(bad)


def test_measurement_replays_and_orders(tmp_path):
    path = tmp_path / "app.py"
    path.write_text("print('hi')")
    items = [measure_file(path, "app.py"), measure_setting("mode", "prod")]
    assert replay(items) == extend(extend(ZERO, items[0]), items[1])
    assert replay(items) != replay(list(reversed(items)))
    assert MeasuredItem.from_log(items[0].to_log()) == items[0]


def test_measure_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot measure"):
        measure_file(tmp_path / "missing")
    for entry in ({"kind": "file"}, {"kind": "file", "name": "a", "sha384": "zz"},
                  {"kind": "dir", "name": "a", "sha384": "00" * 48},
                  {"kind": "file", "name": "a", "sha384": "00" * 47}):
        with pytest.raises(MalformedEvidence):
            MeasuredItem.from_log(entry)


def test_default_items_measure_ccattest_itself(tmp_path):
    extra = tmp_path / "job.json"
    extra.write_text("{}")
    items = default_items([extra], [("mode", "dev")])
    names = [item.name for item in items]
    assert "ccattest/platforms/software/verify.py" in names
    assert names[-2:] == [str(extra), "mode"]


def test_attester_checks_inputs(software):
    with pytest.raises(ConfigError, match="svn out of range"):
        SoftwareAttester(software.site, [], svn=-1)
    with pytest.raises(ConfigError, match="64 bytes"):
        software.attester.collect(b"short")
