"""Values in words: what reasons and errors show people."""

import pytest

from ccattest.text import human, one_of


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([], "none"),
        (["VCEK"], "VCEK"),
        (["VCEK", "VLEK"], "VCEK or VLEK"),
        (["UpToDate", "SWHardeningNeeded"], "UpToDate or SWHardeningNeeded"),
        (["a", "b", "c"], "a, b or c"),
        ((0, 1, True), "0, 1 or yes"),
    ],
)
def test_one_of(values, words):
    assert one_of(values) == words


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "yes"),
        (False, "no"),
        (None, "none"),
        (0, "0"),
        ("text", "text"),
        ([], "none"),
        ({}, "none"),
        (["a", 1, None], "a, 1, none"),
        (("x", False), "x, no"),
        ({"b", "a"}, "a, b"),
        ({"bootloader": 3, "TEE": 0}, "bootloader: 3, TEE: 0"),
        ({"k": [1, 2]}, "k: 1, 2"),
    ],
)
def test_human(value, words):
    assert human(value) == words


def test_human_minimum():
    tcb = {"bootloader": 0, "TEE": 0, "SNP": 0, "microcode": 0}
    assert human(tcb, minimum=True) == "bootloader ≥ 0, TEE ≥ 0, SNP ≥ 0, microcode ≥ 0"
