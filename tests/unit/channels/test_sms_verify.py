"""X-Twilio-Signature checks against the configured public URL."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.base import InboundRequest, Rejected
from channels.sms import TwilioAdapter
from router.settings import Settings
from tests.fakes.twilio_server import AUTH_TOKEN, inbound_sms, new_sid, sign, signed_form

BASE = "https://neuvonta.kunta.example/palvelu"
SID = "AC" + "0" * 32


def adapter(public_url: str | None = BASE, webhook_base: str | None = None) -> TwilioAdapter:
    return TwilioAdapter(
        SID, AUTH_TOKEN, "+358451234567", public_url=public_url, webhook_base=webhook_base
    )


def request(
    twilio: TwilioAdapter, body: bytes, headers: dict[str, str], query: str = ""
) -> InboundRequest:
    return InboundRequest(
        body=body,
        headers={k.lower(): v for k, v in headers.items()},
        url=twilio.signature_url("/webhooks/twilio", query),
    )


def test_a_request_signed_for_the_public_url_passes() -> None:
    twilio = adapter()
    body, headers = signed_form(f"{BASE}/webhooks/twilio", inbound_sms(new_sid(), "+358401", "Hei"))
    twilio.verify(request(twilio, body, headers))


def test_the_query_string_is_part_of_what_is_signed() -> None:
    twilio = adapter()
    form = inbound_sms(new_sid(), "+358401", "Hei")
    body, headers = signed_form(f"{BASE}/webhooks/twilio?kunta=1", form)
    twilio.verify(request(twilio, body, headers, query="kunta=1"))
    with pytest.raises(Rejected):
        twilio.verify(request(twilio, body, headers))


def test_twilio_signing_with_the_default_port_is_accepted() -> None:
    twilio = adapter()
    form = inbound_sms(new_sid(), "+358401", "Hei")
    body, headers = signed_form("https://neuvonta.kunta.example:443/palvelu/webhooks/twilio", form)
    twilio.verify(request(twilio, body, headers))


def test_the_status_url_is_signed_on_its_own_path() -> None:
    twilio = adapter()
    body, headers = signed_form(f"{BASE}/webhooks/twilio/status", {"MessageSid": new_sid()})
    twilio.verify(
        InboundRequest(
            body=body,
            headers={k.lower(): v for k, v in headers.items()},
            url=twilio.signature_url("/webhooks/twilio/status"),
        )
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "invalid X-Twilio-Signature"),
        ("token", "invalid X-Twilio-Signature"),
        ("host", "invalid X-Twilio-Signature"),
        ("unsigned", "missing X-Twilio-Signature"),
    ],
)
def test_forged_or_unsigned_requests_are_refused(change: str, reason: str) -> None:
    twilio = adapter()
    form = inbound_sms(new_sid(), "+358401", "Hei")
    url = f"{BASE}/webhooks/twilio"
    body, headers = signed_form(url, form)
    if change == "body":
        body = body.replace(b"Hei", b"Moi")
    elif change == "token":
        headers["X-Twilio-Signature"] = sign(url, form, token="not-the-token")
    elif change == "host":  # what a Host-header based check would have used
        headers["X-Twilio-Signature"] = sign("http://10.0.0.5:8080/webhooks/twilio", form)
    else:
        del headers["X-Twilio-Signature"]
    with pytest.raises(Rejected) as e:
        twilio.verify(request(twilio, body, headers))
    assert e.value.status == 403
    assert e.value.reason == reason
    assert AUTH_TOKEN not in e.value.reason


def test_without_a_public_url_nothing_can_be_verified() -> None:
    twilio = adapter(public_url=None)
    body, headers = signed_form(f"{BASE}/webhooks/twilio", inbound_sms(new_sid(), "+358401", "Hei"))
    with pytest.raises(Rejected) as e:
        twilio.verify(request(twilio, body, headers))
    assert e.value.status == 403
    assert "NEUVONTA_PUBLIC_URL" in e.value.reason


def test_the_signature_base_can_differ_from_the_public_url() -> None:
    twilio = adapter(webhook_base="http://127.0.0.1:9999")
    body, headers = signed_form(
        "http://127.0.0.1:9999/webhooks/twilio", inbound_sms(new_sid(), "+358401", "Hei")
    )
    twilio.verify(request(twilio, body, headers))


def test_from_settings_is_off_without_credentials_and_never_shows_the_token() -> None:
    assert TwilioAdapter.from_settings(Settings()) is None
    assert TwilioAdapter.from_settings(Settings(twilio_account_sid=SID)) is None
    on = TwilioAdapter.from_settings(
        Settings.model_validate(
            {
                "twilio_account_sid": SID,
                "twilio_auth_token": AUTH_TOKEN,
                "twilio_from_number": "+358451234567",
                "public_url": BASE + "/",
            }
        )
    )
    assert on is not None
    assert on.whatsapp_from == "whatsapp:+358451234567"
    assert on.signature_url("/webhooks/twilio") == f"{BASE}/webhooks/twilio"
    assert AUTH_TOKEN not in repr(on)
    assert AUTH_TOKEN not in repr(vars(on))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.text(max_size=40))
def test_any_request_is_accepted_only_when_signed(body: bytes, signature: str) -> None:
    twilio = adapter()
    with pytest.raises(Rejected) as e:
        twilio.verify(request(twilio, body, {"X-Twilio-Signature": signature}))
    assert e.value.status == 403


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=20)), max_size=8))
def test_any_form_twilio_signs_passes(fields: list[tuple[str, str]]) -> None:
    twilio = adapter()
    body = urlencode(fields).encode()
    headers = {"X-Twilio-Signature": sign(f"{BASE}/webhooks/twilio", fields)}
    twilio.verify(request(twilio, body, headers))
