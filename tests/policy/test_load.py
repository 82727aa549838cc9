import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccattest.errors import ConfigError
from ccattest.policy import load_policy, parse_policy
from ccattest.policy.templates import starter_policy

M1 = "ab" * 48


def test_minimal_and_defaults():
    policy = parse_policy("software:\n  allow: true\n", source="p.yaml")
    assert policy.software is not None and policy.software.allow
    assert policy.common.result_lifetime_seconds == 3600
    assert policy.id.startswith("p@")
    assert policy.section("software") is policy.software
    assert policy.section("snp") is None


def test_explicit_id_and_normalised_digests():
    policy = parse_policy(f"id: prod-1\nsoftware:\n  measurements: ['0x{M1.upper()}']\n")
    assert policy.id == "prod-1"
    assert policy.software.measurements == [M1]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("software:\n  allow: true\n  measurments: []\n", 3, "software.measurments: unknown key"),
        ("common:\n  result_lifetime_seconds: 0\n", 2, "expected more than 0, found 0"),
        ("software:\n  measurements:\n    - abcd\n", 3, "expected 48 bytes"),
        ("software:\n  measurements:\n    - " + "zz" * 48 + "\n", 3, "expected hex digits"),
        ("version: 2\n", 1, "version"),
        ("sofware:\n  allow: true\n", 1, "sofware: unknown key: did you mean software?"),
        ("software:\n  min_svn: lots\n", 2, "software.min_svn"),
    ],
)
def test_errors_name_key_and_line(text, line, fragment):
    with pytest.raises(ConfigError) as info:
        parse_policy(text, source="policy.yaml")
    message = str(info.value)
    assert f"line {line}," in message
    assert fragment in message
    assert message.startswith("policy.yaml: invalid policy")


def test_yaml_syntax_error_has_line():
    with pytest.raises(ConfigError, match=r"policy.yaml:2: policy is not valid YAML"):
        parse_policy("software:\n  allow: b: c\n", source="policy.yaml")


def test_duplicate_keys_are_refused():
    with pytest.raises(ConfigError, match=r"p:3: duplicate key 'allow'") as info:
        parse_policy("software:\n  allow: false\n  allow: true\n", source="p")
    assert info.value.hint == "first defined on line 2"


def test_aliases_are_refused():
    text = "common: &c\n  result_lifetime_seconds: 5\nsoftware: *c\n"
    with pytest.raises(ConfigError, match="aliases are not allowed"):
        parse_policy(text)


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n- b\n", "a policy is a mapping"), ("", "a policy is a mapping"),
    (b"\xff\xfe", "not UTF-8"), ("a" * (1024 * 1024 + 1), "too large"),
])
def test_document_shape(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_policy(text)


def test_reference_file_relative_to_policy(tmp_path):
    (tmp_path / "refs.txt").write_text(f"# golden builds\n{M1}\n\n{'cd' * 48}  # v2\n")
    path = tmp_path / "policy.yaml"
    path.write_text("software:\n  allow: true\n  measurements_file: refs.txt\n")
    policy = load_policy(path)
    assert policy.software.measurements == [M1, "cd" * 48]


def test_reference_file_errors_name_the_line(tmp_path):
    (tmp_path / "refs.txt").write_text(f"{M1}\nnot-a-digest\n")
    path = tmp_path / "policy.yaml"
    path.write_text("software:\n  measurements_file: refs.txt\n")
    with pytest.raises(ConfigError, match=r"refs.txt:2: invalid reference value"):
        load_policy(path)
    path.write_text("software:\n  measurements_file: missing.txt\n")
    with pytest.raises(ConfigError, match="cannot read reference values"):
        load_policy(path)


def test_missing_policy_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read policy") as info:
        load_policy(tmp_path / "nope.yaml")
    assert "policy init" in info.value.hint


@pytest.mark.parametrize("platforms", [[], ["software"]])
def test_starter_policies_are_valid(platforms):
    text = starter_policy(platforms, [M1])
    policy = parse_policy(text)
    assert policy.common.required_platforms == platforms
    if platforms:
        assert "DEVELOPMENT ONLY" in text
        assert policy.software.allow and policy.software.measurements == [M1]


def test_starter_policy_unknown_platform():
    with pytest.raises(ConfigError, match="no policy template for tpm"):
        starter_policy(["tpm"])


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8))
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["allow", "measurements", "min_svn", "x", "common", "software",
                         "result_lifetime_seconds", "identities"]), inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["version", "id", "common", "software", "extra"]),
                       yaml_values, max_size=4))
def test_arbitrary_documents_load_or_raise_config_error(document):
    import yaml

    with contextlib.suppress(ConfigError):
        parse_policy(yaml.safe_dump(document))


@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_raises_config_error(text):
    with contextlib.suppress(ConfigError):
        parse_policy(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("comon:\n  result_lifetime_seconds: 60\n", "line 1, comon: unknown key: did you mean "
                                                     "common?"),
        ("software:\n  allow: true\n  allow_debg: false\n",
         "line 3, software.allow_debg: unknown key: did you mean allow_debug?"),
        ("snp:\n  allow_debg: false\n", "line 2, snp.allow_debg: unknown key: did you mean "
                                         "allow_debug?"),
        ("snp:\n  min_tcb_by_product:\n    Genoa: {micrcode: 3}\n",
         "line 3, snp.min_tcb_by_product.Genoa.micrcode: unknown key: did you mean microcode?"),
        ("snp:\n  zzzzzz: 1\n",
         "snp.zzzzzz: unknown key: check its spelling and the section it is in"),
    ],
)
def test_unknown_keys_suggest_the_closest_valid_key(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_policy(text, source="p.yaml")
    assert str(info.value).startswith("p.yaml: invalid policy")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("common:\n  result_lifetime_seconds: abc\n",
         "common.result_lifetime_seconds: expected a whole number, found 'abc'"),
        ("common:\n  result_lifetime_seconds: 1.5\n",
         "common.result_lifetime_seconds: expected a whole number, found 1.5"),
        ("common:\n  result_lifetime_seconds: 99999999\n",
         "common.result_lifetime_seconds: expected at most 604800, found 99999999"),
        ("software:\n  min_svn: -1\n", "software.min_svn: expected at least 0, found -1"),
        ("software:\n  min_svn: 4294967296\n",
         "software.min_svn: expected less than 4294967296, found 4294967296"),
        ("software:\n  allow: maybe\n", "software.allow: expected true or false, found 'maybe'"),
        ("software:\n  identities: [[a]]\n", "software.identities.0: expected text, found a list"),
        ("software:\n  identities: {a: 1}\n",
         "software.identities: expected a list, found a mapping"),
        ("id: true\n", "id: expected text, found true"),
        ("software: " + "x" * 70 + "\n",
         "software: expected a mapping of keys to values, found '" + "x" * 57 + "...'"),
        ("tdx:\n  rtmrs: [1]\n", "tdx.rtmrs: expected a mapping of keys to values, found a list"),
        ("common:\n  required_platforms:\n",
         "common.required_platforms: expected a list, found nothing (an empty value)"),
        ("snp:\n  products: [Foo]\n", "snp.products.0: expected Milan, Genoa or Turin, "
                                      "found 'Foo'"),
        ("snp:\n  min_firmware: new\n",
         "snp.min_firmware: expected 'major.minor' such as '1.55', found 'new'"),
        ("version: 2\n", "version: expected 1, found 2"),
    ],
)
def test_validation_messages_read_as_a_person_writes(text, fragment):
    with pytest.raises(ConfigError) as info:
        parse_policy(text, source="p.yaml")
    message = str(info.value)
    assert fragment in message
    assert "Input should" not in message and "Value error" not in message


def test_messages_fall_back_to_pydantics_text():
    from pydantic_core import ErrorDetails

    from ccattest.policy.load import _found, _message

    assert _message(ErrorDetails(type="missing", loc=("x",), msg="Field required",
                                 input={})) == "required, but missing"
    assert _message(ErrorDetails(type="too_long", loc=("x",), msg="List is too long",
                                 input=[])) == "List is too long"
    assert _found(b"x") == "bytes"


def test_field_names_along_a_location():
    from ccattest.policy.load import _field_names
    from ccattest.policy.model import Policy

    assert "allow_debug" in _field_names(Policy, ("snp",))
    assert "microcode" in _field_names(Policy, ("snp", "min_tcb_by_product", "Genoa"))
    assert _field_names(Policy, ("nope",)) == []
    assert _field_names(Policy, ("id",)) == []
    assert _field_names(Policy, ("id", "x")) == []
