"""SMS and WhatsApp through Twilio (``from_settings`` is None when Twilio is not configured)."""

from channels.sms.adapter import TwilioAdapter, from_settings
from channels.sms.render import SmsText

__all__ = ["SmsText", "TwilioAdapter", "from_settings"]
