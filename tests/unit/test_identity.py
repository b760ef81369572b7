from __future__ import annotations

import pytest

from router.events import Address, Channel
from router.identity import contact_key, normalise_phone


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+358401234567", "+358401234567"),
        ("+358 40 123 4567", "+358401234567"),
        ("00358-40-1234567", "+358401234567"),
        ("0401234567", None),  # national form: no country, no identity
        ("+0123", None),
        ("abc", None),
    ],
)
def test_phone_numbers_are_normalised_to_e164(written: str, e164: str | None) -> None:
    assert normalise_phone(written) == e164


def test_sms_and_whatsapp_share_a_contact_and_email_is_case_insensitive() -> None:
    sms = contact_key(Address(channel=Channel.SMS, value="+358401234567"))
    wa = contact_key(Address(channel=Channel.WHATSAPP, value="+358401234567"))
    assert sms == wa == "tel:+358401234567"
    assert contact_key(Address(channel=Channel.EMAIL, value="A@B.fi")) == "email:a@b.fi"


@pytest.mark.parametrize("channel", [Channel.WEB, Channel.TELEGRAM])
def test_channels_without_a_lasting_identity_have_no_contact(channel: Channel) -> None:
    assert contact_key(Address(channel=channel, value="12345")) is None
