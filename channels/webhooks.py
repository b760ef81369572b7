"""What every provider webhook route shares: reading a body of bounded size."""

from __future__ import annotations

from fastapi import Request

from channels.base import Rejected


async def read_capped_body(request: Request, limit: int) -> bytes:
    """The raw body; ``Rejected`` (413) as soon as it is known to be longer than ``limit``
    (by its Content-Length, or while reading, without reading further)."""
    too_large = Rejected(f"request body larger than {limit} bytes", status=413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
