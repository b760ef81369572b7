"""Human queues and which departments they serve.

The default set follows the top-level service classes of the Finnish Service Catalogue
(PTV); a municipality replaces it with its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from handoff.hours import WorkingHours, add_open_time, availability
from router.phrases import Availability
from router.policy import DEFAULT_QUEUE, Policy

if TYPE_CHECKING:
    from router.settings import Settings


class Queue(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    label: dict[str, str]
    departments: tuple[str, ...] = ()
    # When people answer (office hours, Europe/Helsinki, unless configured otherwise) …
    hours: WorkingHours = WorkingHours()
    # … and how soon, counted in open time: a ticket without a first human response by then
    # is overdue.
    first_response_minutes: int = Field(default=240, ge=1)

    @property
    def first_response_target(self) -> timedelta:
        return timedelta(minutes=self.first_response_minutes)

    def availability(self, now: datetime) -> Availability | None:
        return availability(self.hours, self.first_response_target, now)

    def due_at(self, created_at: datetime) -> datetime:
        """When the first human response is due for a ticket opened at ``created_at``."""
        return add_open_time(self.hours, created_at, self.first_response_target)


DEFAULT_QUEUES: tuple[Queue, ...] = (
    Queue(
        name=DEFAULT_QUEUE,
        label={"fi": "Yleinen neuvonta", "sv": "Allmän rådgivning", "en": "General enquiries"},
        departments=("P7", "P8", "P9", "P10", "P13", "P14", "P17", "P18", "P20", "P21"),
    ),
    Queue(
        name="housing",
        label={"fi": "Asuminen", "sv": "Boende", "en": "Housing"},
        departments=("P1",),
    ),
    Queue(
        name="building",
        label={
            "fi": "Rakentaminen ja kaavoitus",
            "sv": "Byggande och planläggning",
            "en": "Building and planning",
        },
        departments=("P2",),
    ),
    Queue(
        name="early-education",
        label={
            "fi": "Perheet ja varhaiskasvatus",
            "sv": "Familjer och småbarnspedagogik",
            "en": "Families and early childhood education",
        },
        departments=("P3",),
    ),
    Queue(
        name="social",
        label={"fi": "Sosiaalipalvelut", "sv": "Socialtjänster", "en": "Social services"},
        departments=("P4",),
    ),
    Queue(
        name="health",
        label={"fi": "Terveyspalvelut", "sv": "Hälsotjänster", "en": "Health services"},
        departments=("P5",),
    ),
    Queue(
        name="education",
        label={"fi": "Opetus", "sv": "Utbildning", "en": "Education"},
        departments=("P6",),
    ),
    Queue(
        name="business",
        label={
            "fi": "Elinkeinot ja yritykset",
            "sv": "Näringar och företag",
            "en": "Business and industries",
        },
        departments=("P11", "P12", "P15"),
    ),
    Queue(
        name="streets",
        label={"fi": "Kadut ja liikenne", "sv": "Gator och trafik", "en": "Streets and transport"},
        departments=("P16",),
    ),
    Queue(
        name="safety",
        label={"fi": "Turvallisuus", "sv": "Säkerhet", "en": "Safety"},
        departments=("P19",),
    ),
    Queue(
        name="environment",
        label={
            "fi": "Ympäristö ja eläimet",
            "sv": "Miljö och djur",
            "en": "Environment and animals",
        },
        departments=("P23", "P24"),
    ),
    Queue(
        name="culture-leisure",
        label={
            "fi": "Kulttuuri ja vapaa-aika",
            "sv": "Kultur och fritid",
            "en": "Culture and leisure",
        },
        departments=("P25", "P26", "P27"),
    ),
)


def default_policy(
    default_threshold: float = 0.5, queues: tuple[Queue, ...] = DEFAULT_QUEUES
) -> Policy:
    return Policy(
        version=0,
        default_threshold=default_threshold,
        department_queues={d: q.name for q in queues for d in q.departments},
        default_queue=DEFAULT_QUEUE,
    )


def queues_for(settings: Settings) -> tuple[Queue, ...]:
    """The queues of ``NEUVONTA_QUEUES_FILE`` (handoff.queue_config), else the default set.

    Raises ``QueueConfigError`` naming every problem of the file.
    """
    if settings.queues_file is None:
        return DEFAULT_QUEUES
    from handoff.queue_config import QueueConfigError, parse_queues

    try:
        text = settings.queues_file.read_text(encoding="utf-8")
    except OSError as e:
        raise QueueConfigError([f"cannot read {settings.queues_file}: {e.strerror}"]) from None
    return parse_queues(text)


def by_name(queues: Iterable[Queue]) -> dict[str, Queue]:
    return {q.name: q for q in queues}


def queue_availability(
    queues: Iterable[Queue],
) -> Callable[[str, datetime], Availability | None]:
    """For the router: when a person of a queue answers (unknown queues: the default's)."""
    known = by_name(queues)

    def of(queue: str, now: datetime) -> Availability | None:
        q = known.get(queue) or known.get(DEFAULT_QUEUE)
        return None if q is None else q.availability(now)

    return of
