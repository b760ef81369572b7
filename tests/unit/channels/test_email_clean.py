"""What the AI reads of an email: quoted history and signatures cut, HTML as text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.email.clean import (
    attribution_lines,
    clean_text,
    first_content,
    html_to_text,
    split_lines,
    strip_quoted,
    strip_signature,
)

QUESTION = "Hei,\n\nmilloin kirjasto on auki juhannuksena?\n\nTerveisin\nMatti"


@pytest.mark.parametrize(
    "history",
    [
        "On Mon, 1 Jan 2024 at 10:00, Kunta <neuvonta@kunta.fi> wrote:\n> Hyvä asukas,\n> vanha",
        "On Mon, 1 Jan 2024 at 10:00, Kunta Neuvonta <neuvonta@kunta.fi>\nwrote:\n\n> vanha",
        "ma 1.1.2024 klo 10.00 Kunta (neuvonta@kunta.fi) kirjoitti:\n> vanha viesti",
        "1.1.2024 kello 10.00, Kunta <neuvonta@kunta.fi> kirjoitti:\n\nvanha ilman lainausta",
        "Den 1 jan. 2024 kl. 10:00 skrev Kommunen <info@kommun.fi>:\n> gammalt",
        "-----Original Message-----\nFrom: Kunta\nSent: Monday\nTo: Matti\nSubject: x\n\nvanha",
        "----- Alkuperäinen viesti -----\nvanha",
        "-----Ursprungligt meddelande-----\ngammalt",
        "From: Kunta <neuvonta@kunta.fi>\nSent: Monday, January 1, 2024 10:00 AM\n"
        "To: Matti <matti@example.fi>\nSubject: RE: Kirjasto\n\nvanha",
        "Lähettäjä: Kunta <neuvonta@kunta.fi>\nLähetetty: maanantai 1. tammikuuta 2024 10.00\n"
        "Vastaanottaja: Matti\nAihe: Kirjasto\n\nvanha",
        "Från: Kommunen <info@kommun.fi>\nSkickat: den 1 januari 2024 10:00\nTill: Anna\n"
        "Ämne: Biblioteket\n\ngammalt",
        "________________________________\nFrom: Kunta\nvanha",
        "> vanha\n> viesti",
    ],
)
def test_quoted_history_is_cut_and_the_question_kept(history: str) -> None:
    assert strip_quoted(f"{QUESTION}\n\n{history}\n") == QUESTION


def test_answers_written_between_quotes_stay() -> None:
    text = (
        "On Mon, 1 Jan 2024, Kunta <neuvonta@kunta.fi> wrote:\n"
        "> Mikä on asiakasnumeronne?\n"
        "12345\n"
        "> Entä osoite?\n"
        "Kuntatie 1\n"
    )
    assert strip_quoted(text) == "12345\nKuntatie 1"


def test_a_line_that_merely_says_wrote_is_not_history() -> None:
    text = "Opettaja kirjoitti reissuvihkoon näin:\nLapsi tarvitsee kuljetuksen.\nMiten haen?"
    assert strip_quoted(text) == text


def test_a_bare_forward_is_kept_whole() -> None:
    text = "-----Original Message-----\nFrom: Naapuri\nLumet on auraamatta."
    assert strip_quoted(text) == text


@pytest.mark.parametrize(
    "footer",
    [
        "-- \nMatti Meikäläinen\npuh. 040 123 4567",
        "--\nMatti",
        "Sent from my iPhone",
        "Sent from my Samsung Galaxy smartphone.",
        "Get Outlook for Android",
        "Lähetetty iPhonesta",
        "Lähetetty Android-laitteesta",
        "Skickat från min iPhone",
        "Hämta Outlook för iOS",
    ],
)
def test_signatures_and_mobile_footers_are_cut(footer: str) -> None:
    assert strip_signature(f"{QUESTION}\n\n{footer}\n") == QUESTION


def test_a_sentence_about_a_phone_is_not_a_footer() -> None:
    text = "Hei\nSent from my phone because the library computer was broken, sorry."
    assert strip_signature(text) == text


def test_clean_text_cuts_both() -> None:
    text = f"{QUESTION}\n\nLähetetty iPhonesta\n\nma 1.1.2024 klo 10.00 Kunta kirjoitti:\n> x"
    assert clean_text(text) == QUESTION


def test_html_text_keeps_links_and_drops_scripts_and_styles() -> None:
    html = (
        "<html><head><style>p { color: red }</style><title>Viesti</title></head><body>"
        "<p>Hei, <b>milloin</b> uimahalli&nbsp;aukeaa?</p>"
        '<p>Katsoin <a href="https://kunta.example/uimahalli">sivulta</a>.</p>'
        "<script>alert('x')</script>"
        "<ul><li>yksi</li><li>kaksi</li></ul>"
        "</body></html>"
    )
    text = html_to_text(html)
    assert "Hei, milloin uimahalli\xa0aukeaa?" in text
    assert "sivulta (https://kunta.example/uimahalli)" in text
    assert "- yksi\n- kaksi" in text
    assert "alert" not in text
    assert "color" not in text
    assert "Viesti" not in text


def test_html_quote_blocks_become_quoted_lines_and_are_cut() -> None:
    html = (
        '<div dir="ltr">Kiitos vastauksesta!<br></div><br>'
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, 1 Jan 2024 at 10:00 Kunta '
        "&lt;neuvonta@kunta.fi&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote"><p>Hyvä asukas</p><p>vanha vastaus</p></blockquote></div>'
    )
    assert clean_text(html_to_text(html)) == "Kiitos vastauksesta!"


def test_html_outlook_reply_block_is_cut() -> None:
    html = (
        "<div>Selvä, kiitos.</div><hr><div id='divRplyFwdMsg'><b>Lähettäjä:</b> Kunta<br>"
        "<b>Lähetetty:</b> maanantai 1. tammikuuta 2024 10.00<br><b>Vastaanottaja:</b> Matti<br>"
        "<b>Aihe:</b> Kirjasto</div><div>vanha</div>"
    )
    assert clean_text(html_to_text(html)) == "Selvä, kiitos."


def test_broken_html_gives_text() -> None:
    assert "hei" in html_to_text("<p>hei<div><<<</b></p><!-- never closed")
    assert html_to_text("") == ""


# ---- properties --------------------------------------------------------------------------

_LINE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "> quoted",
            ">",
            "-- ",
            "--",
            "Sent from my iPhone",
            "Lähetetty iPhonesta",
            "On Mon, 1 Jan 2024 Kunta <a@b.fi> wrote:",
            "ma 1.1.2024 klo 10.00 Kunta kirjoitti:",
            "Den 1 jan. 2024 skrev Anna <a@b.se>:",
            "-----Original Message-----",
            "From: a",
            "Sent: b",
            "To: c",
            "",
            " ",
            "\r",
        ]
    ),
)
_TEXT = st.lists(_LINE, max_size=20).map("\n".join)


def _first_kept_line(text: str) -> str | None:
    """The first line the resident wrote, when it must survive cleaning."""
    lines = split_lines(text)
    first = first_content(lines)
    if first == len(lines):
        return None
    line = lines[first]
    if line.lstrip().startswith(">") or attribution_lines(lines, first):
        return None
    return line.strip()


@given(_TEXT)
def test_stripping_never_adds_and_keeps_the_first_line(text: str) -> None:
    for strip in (strip_quoted, strip_signature, clean_text):
        out = strip(text)
        assert len(out) <= len(text)
        first = _first_kept_line(text)
        if first is not None:
            assert out.split("\n")[0] == first


@given(st.text(max_size=300))
def test_stripping_arbitrary_text_never_adds(text: str) -> None:
    assert len(clean_text(text)) <= len(text)


@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(
                ["<p>", "</p>", "<br>", "<blockquote>", "</blockquote>", "<script>", "<a href='x'>"]
            ),
            st.sampled_from(["</a>", "<style>", "</style>", "<pre>", "</pre>", "<!--", "<!", "&#"]),
        ),
        max_size=30,
    ).map("".join)
)
def test_html_to_text_never_raises(html: str) -> None:
    assert isinstance(html_to_text(html), str)
