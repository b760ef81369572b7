"""Email: inbound over SMTP (a server of our own) and/or IMAP polling, outbound through an
SMTP relay. Threads stay together by Message-ID, mail loops are refused."""

from channels.email.adapter import EmailAdapter, from_settings

__all__ = ["EmailAdapter", "from_settings"]
