"""Human queues and which departments they serve.

The default set follows the top-level service classes of the Finnish Service Catalogue
(PTV); a municipality replaces it with its own.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from router.policy import DEFAULT_QUEUE, Policy


class Queue(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    label: dict[str, str]
    departments: tuple[str, ...] = ()


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
