"""SMS length rules: GSM-7 vs UCS-2 and segment counts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.sms.segments import GSM7_BASIC, GSM7_EXTENSION, for_sms, is_gsm7, measure

BASIC = "".join(sorted(GSM7_BASIC))
EXTENSION = "".join(sorted(GSM7_EXTENSION))


def test_finnish_and_swedish_letters_are_gsm7() -> None:
    m = measure("Hyvää päivää! Välkommen till biblioteket, ÅÄÖ åäö.")
    assert m.encoding == "GSM-7"
    assert m.segments == 1


@pytest.mark.parametrize(
    ("length", "segments"), [(0, 1), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (612, 4)]
)
def test_gsm7_segments_are_160_then_153(length: int, segments: int) -> None:
    assert measure("a" * length).segments == segments


@pytest.mark.parametrize(
    ("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (268, 4), (269, 5)]
)
def test_ucs2_segments_are_70_then_67(length: int, segments: int) -> None:
    m = measure("Ж" * length)
    assert m.encoding == "UCS-2"
    assert m.segments == segments


def test_extension_characters_take_two_septets() -> None:
    assert measure("€" * 80).units == 160
    assert measure("€" * 80).segments == 1
    assert measure("€" * 81).segments == 2
    assert measure("[x]").units == 5


def test_an_escaped_character_is_not_split_between_segments() -> None:
    # 152 single septets, then "€" (2) does not fit the first part's last septet.
    m = measure("a" * 152 + "€" + "a" * 152)
    assert m.units == 306
    assert m.segments == 3


def test_one_emoji_makes_the_whole_message_ucs2_and_counts_two_units() -> None:
    m = measure("Kiitos 👍")
    assert m.encoding == "UCS-2"
    assert m.units == 9


def test_typographic_characters_are_spelled_in_gsm7_when_that_suffices() -> None:
    assert for_sms("Auki 9–20 ”arkisin” … ") == 'Auki 9-20 "arkisin" ... '
    # UCS-2 anyway (Cyrillic): nothing is changed.
    assert for_sms("Привет – ok") == "Привет – ok"
    assert is_gsm7(for_sms("Kirjasto’n aukiolo — ks. • linkki"))


@given(st.text(alphabet=BASIC, max_size=2000))
def test_gsm7_basic_segments_follow_the_formula(text: str) -> None:
    n = len(text)
    m = measure(text)
    assert m.encoding == "GSM-7"
    assert m.units == n
    assert m.segments == (1 if n <= 160 else math.ceil(n / 153))


@given(st.text(alphabet=st.characters(min_codepoint=0x400, max_codepoint=0x4FF), max_size=900))
def test_ucs2_bmp_segments_follow_the_formula(text: str) -> None:
    n = len(text)
    m = measure(text)
    assert m.encoding == ("UCS-2" if n else "GSM-7")
    assert m.segments == (1 if n <= 70 else math.ceil(n / 67))


@given(st.text(alphabet=BASIC + EXTENSION, max_size=1000))
def test_gsm7_with_extension_wastes_at_most_a_septet_per_part(text: str) -> None:
    m = measure(text)
    assert m.units == len(text) + sum(c in GSM7_EXTENSION for c in text)
    if m.units <= 160:
        assert m.segments == 1
    else:
        assert math.ceil(m.units / 153) <= m.segments <= math.ceil(m.units / 152)


@given(st.text(max_size=800))
def test_any_text_is_measured_and_a_longer_one_never_takes_fewer(text: str) -> None:
    m = measure(text)
    assert m.segments >= 1
    assert measure(text + "x").segments >= m.segments
