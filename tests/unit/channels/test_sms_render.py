"""Replies as SMS and WhatsApp text: sources written in, shortened to fit, links kept."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from channels.sms import TwilioAdapter
from channels.sms.render import MARKER, render_sms, render_whatsapp
from channels.sms.segments import measure
from router.events import Address, Channel, ReplyRequested, Role, SourceRef

NUMBER = "+358401234567"
LIBRARY = SourceRef(doc_id="lib", title="Kirjastopalvelut", url="/kb/lib")
SPORTS = SourceRef(doc_id="uim", title="Uimahalli", url="https://kunta.example/uimahalli")


def adapter(
    public_url: str | None = "https://neuvonta.kunta.example", segments: int = 4
) -> TwilioAdapter:
    return TwilioAdapter(
        "AC" + "0" * 32, "token", "+358451234567", public_url=public_url, max_segments=segments
    )


def reply(
    text: str,
    sources: tuple[SourceRef, ...] = (),
    channel: Channel = Channel.SMS,
    language: str = "fi",
) -> ReplyRequested:
    return ReplyRequested(
        message_id="m1",
        channel=channel,
        recipient=Address(channel=channel, value=NUMBER),
        role=Role.AI,
        text=text,
        sources=sources,
        language=language,
    )


LONG_FI = (
    "Kirjasto on auki arkisin kello 9-20 ja lauantaisin kello 10-16. "
    "Kirjastokortin saat mukaan lainaustiskiltä, kun näytät henkilöllisyystodistuksen. "
    "Lainoja voi uusia verkossa tai kirjastossa viisi kertaa, ellei niistä ole varausta. "
) * 6


def test_a_short_answer_goes_whole_with_its_sources_as_absolute_links() -> None:
    sms = adapter().render(reply("Kirjasto on auki arkisin.", (LIBRARY, SPORTS)))
    assert sms.text == (
        "Kirjasto on auki arkisin.\n\n"
        "Lähteet:\n"
        "Kirjastopalvelut: https://neuvonta.kunta.example/kb/lib\n"
        "Uimahalli: https://kunta.example/uimahalli"
    )
    assert sms.encoding == "GSM-7"
    assert sms.segments == 1
    assert not sms.shortened


def test_the_sources_heading_follows_the_reply_language() -> None:
    sms = adapter().render(reply("Biblioteket är öppet.", (SPORTS,), language="sv"))
    assert "Källor:\nUimahalli: https://kunta.example/uimahalli" in sms.text


def test_relative_links_stay_relative_without_a_public_url() -> None:
    sms = adapter(public_url=None).render(reply("Auki.", (LIBRARY,)))
    assert sms.text.endswith("Kirjastopalvelut: /kb/lib")


def test_a_long_answer_is_cut_at_a_sentence_and_keeps_its_links() -> None:
    sms = adapter().render(reply(LONG_FI, (LIBRARY, SPORTS)))
    assert sms.shortened
    assert sms.segments <= 4
    assert measure(sms.text).segments == sms.segments
    body, _, links = sms.text.partition("\n\nLähteet:\n")
    assert links == (
        "Kirjastopalvelut: https://neuvonta.kunta.example/kb/lib\n"
        "Uimahalli: https://kunta.example/uimahalli"
    )
    # A whole sentence, then the mark; in GSM-7 "…" is spelled "..." (one "…" would make
    # the whole message UCS-2).
    assert body.endswith(". ...")
    assert body.startswith("Kirjasto on auki arkisin kello 9-20")
    assert sms.encoding == "GSM-7"


def test_a_long_ucs2_answer_keeps_the_ellipsis_and_fits_its_smaller_segments() -> None:
    sms = adapter().render(reply("Привет! " + LONG_FI, (SPORTS,)))
    assert sms.encoding == "UCS-2"
    assert sms.segments <= 4
    assert MARKER in sms.text
    assert sms.text.endswith("Uimahalli: https://kunta.example/uimahalli")


def test_the_number_of_segments_is_configurable() -> None:
    sms = adapter(segments=2).render(reply(LONG_FI, (SPORTS,)))
    assert sms.segments <= 2
    assert sms.text.endswith("https://kunta.example/uimahalli")


def test_a_text_without_sentence_ends_is_cut_between_words() -> None:
    sms = render_sms("sana " * 300, "", max_segments=1)
    assert sms.text.endswith("sana...")
    assert len(sms.text) <= 160


def test_whatsapp_is_not_counted_in_segments_and_keeps_unicode() -> None:
    a = adapter()
    short = a.render(reply("Kiitos – tervetuloa 👍", (SPORTS,), channel=Channel.WHATSAPP))
    assert short.text.startswith("Kiitos – tervetuloa 👍\n\nLähteet:")
    assert short.encoding == "UTF-8"
    long = a.render(reply(LONG_FI * 3, (SPORTS,), channel=Channel.WHATSAPP))
    assert long.shortened
    assert len(long.text) <= 1600
    assert MARKER in long.text
    assert long.text.endswith("https://kunta.example/uimahalli")


def test_sources_that_cannot_fit_are_dropped_from_the_end_never_over_the_limit() -> None:
    links = "Lähteet:\n" + "\n".join(
        f"Lähde {i}: https://kunta.example/{'x' * 60}" for i in range(9)
    )
    sms = render_sms(LONG_FI, links, max_segments=2)
    assert sms.segments <= 2
    assert "Lähde 0: https://kunta.example/" in sms.text
    assert "Lähde 8" not in sms.text


words = st.lists(
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1),
    max_size=120,
).map(" ".join)
link = st.builds(
    lambda title, path: f"{title}: https://kunta.example/{path}",
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzäö ", min_size=1, max_size=30).map(str.strip),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/", max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(body=words, sources=st.lists(link, max_size=3), segments=st.integers(2, 6))
def test_never_over_the_limit_and_the_links_always_kept(
    body: str, sources: list[str], segments: int
) -> None:
    links = "Lähteet:\n" + "\n".join(sources) if sources else ""
    sms = render_sms(body, links, max_segments=segments)
    assert sms.segments <= segments
    assert measure(sms.text).segments == sms.segments
    assert measure(sms.text).encoding == sms.encoding
    for line in sources:
        if line.strip():
            assert line.strip() in sms.text


@settings(max_examples=100, deadline=None)
@given(body=words, segments=st.integers(1, 6))
def test_what_fits_is_sent_unchanged_and_what_does_not_is_marked(body: str, segments: int) -> None:
    sms = render_sms(body, "", max_segments=segments)
    assert sms.segments <= segments
    if sms.shortened:
        assert sms.text.endswith((MARKER, "..."))
    else:
        assert measure(sms.text).segments <= segments


@settings(max_examples=100, deadline=None)
@given(body=words, sources=st.lists(link, max_size=3))
def test_whatsapp_never_over_1600_characters(body: str, sources: list[str]) -> None:
    links = "Sources:\n" + "\n".join(sources) if sources else ""
    message = render_whatsapp(body * 3, links)
    assert len(message.text) <= 1600
    for line in sources:
        if line.strip():
            assert line.strip() in message.text
