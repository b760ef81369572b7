"""X-Twilio-Signature: an HMAC-SHA1 of the URL Twilio called and the form it sent.

The URL is rebuilt from the configured public URL, not from the Host header, so checking
works behind a reverse proxy. Twilio signs some URLs with the port and some without;
both forms are tried, as Twilio's own validator does.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit

from twilio.request_validator import (  # type: ignore[import-untyped]
    RequestValidator,
    add_port,
    remove_port,
)

from channels.base import InboundRequest, Rejected
from channels.sms.parse import signed_fields

SIGNATURE_HEADER = "x-twilio-signature"
MESSAGE_PATH = "/webhooks/twilio"
STATUS_PATH = "/webhooks/twilio/status"


def signature_url(base: str, path: str, query: str = "") -> str:
    """The URL Twilio signed: ``{base}{path}`` and the query string it called with."""
    url = base.rstrip("/") + path
    return f"{url}?{query}" if query else url


class _Fields(dict[str, list[str]]):
    """Form fields with repeats, as ``RequestValidator`` reads multi-dicts (``getall``)."""

    def getall(self, name: str) -> list[str]:
        return self[name]


def compute(token: str, url: str, fields: Sequence[tuple[str, str]]) -> str:
    params = _Fields()
    for name, value in fields:
        params.setdefault(name, []).append(value)
    return str(RequestValidator(token).compute_signature(url, params))


def check(token: str, request: InboundRequest) -> None:
    """Raise ``Rejected`` (403) unless ``request`` carries Twilio's signature for its URL."""
    if not request.url:
        raise Rejected(
            "Twilio webhooks cannot be verified: NEUVONTA_PUBLIC_URL is not set", status=403
        )
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    if not given:
        raise Rejected("missing X-Twilio-Signature", status=403)
    fields = signed_fields(request.body)
    try:
        parts = urlsplit(request.url)
        urls = {remove_port(parts), add_port(parts)}
    except ValueError:  # a bad port in the configured public URL
        raise Rejected("the public URL is not a valid URL", status=403) from None
    for url in urls:
        if hmac.compare_digest(compute(token, url, fields).encode(), given.encode()):
            return
    raise Rejected("invalid X-Twilio-Signature", status=403)
