"""A benchmark agent that answers everything at once from the first document.

It measures the message path without the cost of triage; never use it for residents.
"""

from __future__ import annotations

from agents.base import Assessment, Document, TriageRequest
from router.events import SourceRef


class NoopAgent:
    name = "noop"

    def __init__(self, docs: list[Document]) -> None:
        doc = docs[0] if docs else Document(id="noop", title={"en": "Benchmark"}, text={})
        # Made once (assessments are immutable): the benchmark measures the path, not this.
        self._assessment = Assessment(
            language="en",
            reply_language="en",
            answer="Benchmark answer.",
            answer_language="en",
            sources=(SourceRef(doc_id=doc.id, title=doc.title_in("en"), url=doc.url),),
            confidence=1.0,
            reason="noop benchmark agent",
        )

    async def triage(self, request: TriageRequest) -> Assessment:
        return self._assessment
