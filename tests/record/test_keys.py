"""A site's record keys on disk and the federation's JWK Set of note keys: what is written,
what is read back, and every key set or key file that must be refused."""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ccattest.errors import ConfigError
from ccattest.record import note
from ccattest.record.keys import (
    LOG_KEY_FILE,
    WITNESS_KEY_FILE,
    NoteKeys,
    SiteKeys,
    merge_jwks,
    note_jwk,
    note_keys,
    origin_for,
)
from ccattest.tokens import SigningKey, jwks

FEDERATION = "fed-a"


def _keys(site: str = "site-1") -> SiteKeys:
    return SiteKeys.generate(FEDERATION, site)


def _key_set(*sites: str) -> dict[str, Any]:
    """A federation key set as provisioning makes it: a result key and each site's keys."""
    return merge_jwks([jwks([SigningKey.generate()])["keys"],
                       *(_keys(site).public_jwks() for site in sites)])


def _log_jwk(**changes: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = note_jwk(_keys().log.verifier, "log")
    jwk.update(changes)
    return jwk


def _refused(jwk: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        note_keys({"keys": [jwk]})
    return caught.value


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# -- origins -----------------------------------------------------------------------------------

def test_origin_names_the_federation_and_the_site() -> None:
    assert origin_for(FEDERATION, "site-1") == "ccattest.record/fed-a/site-1"


@pytest.mark.parametrize("site", ["site 1", "site+1", "site\t1"])
def test_origin_for_a_name_that_cannot_name_a_log_is_refused(site: str) -> None:
    with pytest.raises(ConfigError, match="cannot name a log") as caught:
        origin_for(FEDERATION, site)
    assert caught.value.expected == "no spaces or '+'"
    assert caught.value.found == f"ccattest.record/fed-a/{site}"


# -- site keys ---------------------------------------------------------------------------------

def test_generated_keys_are_a_log_key_named_after_the_origin_and_a_witness_key() -> None:
    keys = _keys("site-2")
    assert (keys.log.name, keys.log.kind) == (origin_for(FEDERATION, "site-2"), note.ED25519)
    assert (keys.witness.name, keys.witness.kind) == ("site-2", note.COSIGNATURE_V1)


def test_written_keys_load_back_and_are_private_files(tmp_path: Path) -> None:
    keys = _keys()
    folder = tmp_path / "new" / "cc"  # created on write
    keys.write(folder)
    for name in (LOG_KEY_FILE, WITNESS_KEY_FILE):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600
        assert (folder / name).read_text(encoding="ascii").startswith("PRIVATE+KEY+")
    loaded = SiteKeys.load(folder)
    assert loaded.log.verifier == keys.log.verifier
    assert loaded.witness.verifier == keys.witness.verifier


def test_rewriting_keys_replaces_the_old_ones(tmp_path: Path) -> None:
    _keys().write(tmp_path)
    newer = _keys()
    newer.write(tmp_path)
    assert SiteKeys.load(tmp_path).log.verifier == newer.log.verifier


def test_a_missing_key_file_is_a_config_error_with_a_hint(tmp_path: Path) -> None:
    _keys().write(tmp_path)
    (tmp_path / WITNESS_KEY_FILE).unlink()
    with pytest.raises(ConfigError, match="cannot read the record's witness key") as caught:
        SiteKeys.load(tmp_path)
    assert caught.value.found == os.strerror(2)  # "No such file or directory"
    assert caught.value.hint is not None and "configure" in caught.value.hint


def test_an_empty_key_folder_fails_on_the_log_key_first(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the record's log key"):
        SiteKeys.load(tmp_path)


def test_a_key_file_that_is_not_ascii_is_unreadable(tmp_path: Path) -> None:
    _keys().write(tmp_path)
    (tmp_path / LOG_KEY_FILE).write_bytes("PRIVATE+KEY+café".encode())
    with pytest.raises(ConfigError, match="cannot read the record's log key") as caught:
        SiteKeys.load(tmp_path)
    assert caught.value.found == "UnicodeDecodeError"


def test_a_key_path_that_is_a_folder_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / LOG_KEY_FILE).mkdir()
    with pytest.raises(ConfigError, match="cannot read the record's log key"):
        SiteKeys.load(tmp_path)


def test_a_witness_key_where_the_log_key_belongs_is_refused(tmp_path: Path) -> None:
    keys = _keys()
    keys.write(tmp_path)
    (tmp_path / LOG_KEY_FILE).write_text(keys.witness.encode() + "\n", encoding="ascii")
    with pytest.raises(ConfigError, match=re.escape(f"{LOG_KEY_FILE} is not a log key")) as caught:
        SiteKeys.load(tmp_path)
    assert (caught.value.expected, caught.value.found) == ("type 0x01", "type 0x04")


def test_a_log_key_where_the_witness_key_belongs_is_refused(tmp_path: Path) -> None:
    keys = _keys()
    keys.write(tmp_path)
    (tmp_path / WITNESS_KEY_FILE).write_text(keys.log.encode(), encoding="ascii")
    with pytest.raises(ConfigError, match="is not a witness key") as caught:
        SiteKeys.load(tmp_path)
    assert (caught.value.expected, caught.value.found) == ("type 0x04", "type 0x01")


def test_a_key_file_that_is_not_a_signer_key_is_refused(tmp_path: Path) -> None:
    _keys().write(tmp_path)
    (tmp_path / LOG_KEY_FILE).write_text("not a key\n", encoding="ascii")
    with pytest.raises(ConfigError, match="not a signer key"):
        SiteKeys.load(tmp_path)


# -- note keys as JWKs -------------------------------------------------------------------------

def test_a_note_jwk_is_a_public_okp_key_whose_kid_commits_to_its_name() -> None:
    verifier = _keys().witness.verifier
    jwk = note_jwk(verifier, "witness")
    assert jwk == {"kty": "OKP", "crv": "Ed25519", "x": _b64url(verifier.public_key),
                   "use": "sig", "alg": "EdDSA", "kid": f"site-1+{verifier.key_id.hex()}",
                   "ccattest_note": "witness", "ccattest_name": "site-1"}


@pytest.mark.parametrize(("role", "pick"), [("witness", lambda k: k.log.verifier),
                                            ("log", lambda k: k.witness.verifier),
                                            ("auditor", lambda k: k.log.verifier)])
def test_a_note_jwk_for_a_key_of_another_role_is_refused(
        role: str, pick: Callable[[SiteKeys], note.Verifier]) -> None:
    with pytest.raises(ConfigError, match=f"a {role} key has another type"):
        note_jwk(pick(_keys()), role)


def test_site_public_keys_are_its_log_and_witness_jwks() -> None:
    keys = _keys()
    assert [jwk["ccattest_note"] for jwk in keys.public_jwks()] == ["log", "witness"]
    assert all("d" not in jwk for jwk in keys.public_jwks())


# -- reading a federation key set --------------------------------------------------------------

def test_note_keys_reads_logs_by_origin_and_witnesses_by_name() -> None:
    site_1, site_2 = _keys("site-1"), _keys("site-2")
    key_set = merge_jwks([jwks([SigningKey.generate()])["keys"], site_1.public_jwks(),
                          site_2.public_jwks()])
    found = note_keys(key_set)
    assert found.logs == {site_1.log.name: site_1.log.verifier,
                          site_2.log.name: site_2.log.verifier}
    assert found.witnesses == {"site-1": site_1.witness.verifier,
                               "site-2": site_2.witness.verifier}
    assert found.log(origin_for(FEDERATION, "site-2")) == site_2.log.verifier


def test_result_keys_and_non_objects_in_the_set_are_not_note_keys() -> None:
    found = note_keys({"keys": [*jwks([SigningKey.generate()])["keys"], "text", 7]})
    assert found == NoteKeys({}, {})


@pytest.mark.parametrize("key_set", [[], {"keys": {"a": 1}}, {"nokeys": []}, {"keys": None}])
def test_a_key_set_without_a_keys_list_is_malformed(key_set: Any) -> None:
    with pytest.raises(ConfigError, match="malformed JWKS") as caught:
        note_keys(key_set)
    assert caught.value.expected == 'an object with a "keys" list'


def test_an_unknown_log_is_a_config_error_listing_the_known_ones() -> None:
    found, unknown = note_keys(_key_set("site-1", "site-2")), "ccattest.record/x/y"
    with pytest.raises(ConfigError, match=re.escape(f"no key for the log {unknown}")) as caught:
        found.log(unknown)
    assert caught.value.expected == ("one of ccattest.record/fed-a/site-1, "
                                     "ccattest.record/fed-a/site-2")
    assert caught.value.hint is not None and "federation.jwks.json" in caught.value.hint


def test_an_empty_key_set_knows_no_log() -> None:
    with pytest.raises(ConfigError, match="no key for the log") as caught:
        note_keys({"keys": []}).log("ccattest.record/fed-a/server")
    assert caught.value.expected == "one of (none)"


@pytest.mark.parametrize("changes", [{"ccattest_note": "auditor"}, {"ccattest_note": None},
                                     {"ccattest_name": 5}, {"ccattest_name": None},
                                     {"x": 12}, {"x": None}])
def test_a_jwk_without_a_record_role_name_and_x_is_not_a_record_key(
        changes: dict[str, Any]) -> None:
    error = _refused(_log_jwk(**changes))
    assert error.message == "JWKS key 0 is not a record key"
    assert error.expected == "ccattest_note log|witness, ccattest_name and x"


def test_the_refused_key_is_named_by_its_position() -> None:
    good = _log_jwk()
    with pytest.raises(ConfigError, match="JWKS key 2 is not a record key"):
        note_keys({"keys": [{"kty": "EC"}, good, _log_jwk(ccattest_note="other")]})


@pytest.mark.parametrize("changes", [{"kty": "EC"}, {"crv": "X25519"}, {"kty": None},
                                     {"d": "c2VjcmV0"}])
def test_a_jwk_that_is_not_a_public_ed25519_key_is_refused(changes: dict[str, Any]) -> None:
    error = _refused(_log_jwk(**changes))
    assert error.message == "JWKS key 0 is not a public Ed25519 key"
    assert error.expected == "kty OKP, crv Ed25519, no d"


def test_a_jwk_whose_x_is_not_base64url_is_refused() -> None:
    jwk = _log_jwk()
    error = _refused({**jwk, "x": jwk["x"] + "AA"})  # 45 characters: no base64 is 4k + 1 long
    assert error.message == "JWKS key 0: x is not base64url"


def test_a_jwk_whose_x_is_not_32_bytes_is_refused() -> None:
    with pytest.raises(ConfigError, match="an Ed25519 public key is 32 bytes"):
        note_keys({"keys": [_log_jwk(x=_b64url(bytes(31)))]})


def test_a_jwk_whose_x_is_padded_is_read() -> None:
    jwk = _log_jwk()
    padded = {**jwk, "x": jwk["x"] + "="}
    assert note_keys({"keys": [padded]}).logs == note_keys({"keys": [jwk]}).logs


def test_a_jwk_with_a_wrong_kid_is_refused() -> None:
    jwk = _log_jwk()
    error = _refused({**jwk, "kid": jwk["kid"][:-1] + ("0" if jwk["kid"][-1] != "0" else "1")})
    assert error.message == "JWKS key 0's kid does not match its name and key"
    assert error.expected == jwk["kid"]


def test_a_jwk_that_carries_another_key_than_its_kid_names_is_refused() -> None:
    other = _keys().log.verifier
    error = _refused(_log_jwk(x=_b64url(other.public_key)))
    assert "kid does not match its name and key" in error.message
    assert error.expected == f"{other.name}+{other.key_id.hex()}"


def test_a_jwk_renamed_without_its_kid_is_refused() -> None:
    assert "kid does not match" in _refused(_log_jwk(ccattest_name="ccattest.record/x/y")).message


def test_a_jwk_without_a_kid_is_refused_naming_none() -> None:
    jwk = _log_jwk()
    del jwk["kid"]
    assert _refused(jwk).found == "None"


def test_a_jwk_whose_role_disagrees_with_its_key_type_is_refused() -> None:
    # The same key read as a witness key gets type 0x04, so another key ID than its kid.
    assert "kid does not match" in _refused(_log_jwk(ccattest_note="witness")).message


def test_two_log_keys_with_one_name_are_refused() -> None:
    origin = origin_for(FEDERATION, "site-1")
    first = note_jwk(note.Signer.generate(origin).verifier, "log")
    second = note_jwk(note.Signer.generate(origin).verifier, "log")
    with pytest.raises(ConfigError, match=re.escape(f"two log keys named {origin}")) as caught:
        note_keys({"keys": [first, second]})
    assert caught.value.hint == "a key set names each log and witness once"


def test_two_witness_keys_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigError, match="two witness keys named site-1"):
        note_keys({"keys": [_keys().public_jwks()[1], _keys().public_jwks()[1]]})


def test_a_log_and_a_witness_may_share_a_name() -> None:
    log = note.Signer.generate("site-1").verifier
    witness = note.Signer.generate("site-1", note.COSIGNATURE_V1).verifier
    found = note_keys({"keys": [note_jwk(log, "log"), note_jwk(witness, "witness")]})
    assert (found.logs["site-1"], found.witnesses["site-1"]) == (log, witness)


@pytest.mark.parametrize("role", [["log"], {"log": 1}])
def test_a_jwk_whose_role_is_not_a_string_is_not_a_record_key(role: Any) -> None:
    assert _refused(_log_jwk(ccattest_note=role)).message == "JWKS key 0 is not a record key"


# -- merging -----------------------------------------------------------------------------------

def test_merge_keeps_the_first_key_of_each_kid_in_order() -> None:
    first = {"kid": "a", "n": 1}
    merged = merge_jwks([[first, {"kid": "b"}], [{"kid": "a", "n": 2}, {"kid": "c"}]])
    assert merged == {"keys": [{"kid": "a", "n": 1}, {"kid": "b"}, {"kid": "c"}]}
    assert merged["keys"][0] is not first  # copies: the result can be changed freely


def test_merging_a_site_twice_gives_one_copy_of_its_keys() -> None:
    keys = _keys()
    merged = merge_jwks([keys.public_jwks(), keys.public_jwks()])
    assert merged["keys"] == keys.public_jwks()
    assert note_keys(merged).witnesses == {"site-1": keys.witness.verifier}


def test_keys_without_a_kid_merge_into_one() -> None:
    assert merge_jwks([[{"x": 1}, {"x": 2}]]) == {"keys": [{"x": 1}]}
