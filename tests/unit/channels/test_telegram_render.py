"""Telegram outbound, pure: plain text with its sources, in parts within Telegram's limit."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from channels.telegram.render import MAX_UTF16, TelegramReply, render_reply, split, utf16_len
from router.events import ReplyRequested, Role, SourceRef


def reply(text: str, *sources: SourceRef, **kw: Any) -> ReplyRequested:
    return ReplyRequested(
        message_id="m1",
        channel="telegram",
        recipient="telegram:4242",
        role=Role.AI,
        text=text,
        sources=sources,
        **kw,
    )


LIBRARY = SourceRef(doc_id="lib", title="Kirjastopalvelut", url="/kb/lib")


def test_an_answer_is_plain_text_with_its_sources_as_absolute_links() -> None:
    rendered = render_reply(
        reply("Kirjasto on auki arkisin.", LIBRARY, language="fi"), "https://kunta.example/"
    )
    assert rendered == TelegramReply(
        chat_id=4242,
        parts=(
            "Kirjasto on auki arkisin.\n\nLähteet:\nKirjastopalvelut: https://kunta.example/kb/lib",
        ),
    )


def test_absolute_links_are_kept_and_relative_ones_stay_without_a_public_url() -> None:
    elsewhere = SourceRef(doc_id="x", title="Suomi.fi", url="https://www.suomi.fi/palvelut")
    untitled = SourceRef(doc_id="y", title="Ohje")
    text = render_reply(reply("Vastaus.", LIBRARY, elsewhere, untitled, language="sv"), None)
    assert text.parts == (
        "Vastaus.\n\nKällor:\nKirjastopalvelut: /kb/lib\nSuomi.fi: https://www.suomi.fi/palvelut"
        "\nOhje",
    )


def test_markup_characters_are_sent_as_they_are() -> None:
    text = "Katso *tämä* ja <b>tuo</b> [linkki](https://x.example) _alaviiva_"
    assert render_reply(reply(text), None).parts == (text,)


def test_an_empty_reply_has_no_parts() -> None:
    assert render_reply(reply("  \n "), None).parts == ()


def test_a_5000_character_answer_is_two_messages_cut_between_words() -> None:
    words = ("kirjasto " * 556).strip()  # 5003 characters
    parts = split(words)
    assert len(parts) == 2
    assert all(utf16_len(p) <= MAX_UTF16 for p in parts)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in parts)
    assert " ".join(parts) == words


def test_a_paragraph_boundary_is_preferred_to_a_line_or_a_word() -> None:
    first = "a" * 3000
    second = "b " * 400 + "\nsame paragraph " + "c " * 300
    parts = split(f"{first}\n\n{second}")
    assert parts[0] == first
    assert parts[1] == second.strip()


def test_a_line_boundary_is_used_when_no_paragraph_is_near_enough() -> None:
    text = "x\n\n" + "a" * 3000 + "\n" + "b" * 3000
    assert split(text) == ("x\n\n" + "a" * 3000, "b" * 3000)


def test_emoji_count_as_two_units_like_telegram_counts_them() -> None:
    text = "🙂" * 3000  # 6000 UTF-16 code units, no spaces
    parts = split(text)
    assert [utf16_len(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == text


def test_a_hard_cut_does_not_split_an_emoji_sequence_or_a_combining_mark() -> None:
    family = "👨\u200d👩\u200d👧"  # one glyph of five code points, eight code units
    text = "a" * 4093 + family
    assert split(text) == ("a" * 4093, family)
    accented = "e\u0301"
    text = "b" * 4095 + accented
    assert split(text) == ("b" * 4095, accented)


TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"])
    | st.sampled_from([" ", "\n", "🙂", "\u200d", "\u0301"]),
    max_size=300,
)


@given(TEXT, st.integers(min_value=2, max_value=60))
def test_parts_fit_are_never_empty_and_lose_nothing_but_whitespace(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(p and p == p.strip() for p in parts)
    assert all(utf16_len(p) <= limit for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())
