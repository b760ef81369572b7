"""Knowledge-base ingest benchmark: a municipal website's worth of HTML pages, end to end.

    python -m bench.kb_ingest [--pages 10000] [--dense-seconds 30] [--json]

Generates N municipal service pages (seeded, deterministic; Finnish, Swedish and English
versions linked with hreflang, as a municipal CMS publishes them; made-up text from a
vocabulary of municipal service words) into a temporary folder, then, with a real SQLite
database in a temporary data folder, measures:

(a) ``neuvonta kb ingest FOLDER``: the CLI command itself, in this process;
(b) the time until the pages are searchable: the documents read back from the database and
    an offline agent built on them as the server builds it (vector cache in the data folder),
    until its lexical index answers a query for a page's own title with that page first;
(c) dense passage vectors filling in behind it for ``--dense-seconds``: vectors/s and the
    projected time until dense ranking joins (every title and first passage has its vector)
    and until all are there.

Target: (a) + (b) under 60 s for 10 000 pages.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from agents.base import Document
    from agents.offline import OfflineAgent
    from router.settings import Settings

TARGET_SECONDS = 60.0
# Texts timed to project how long the dense vectors take (spread over all lengths).
COST_SAMPLE = 96
REPEATS = 3
LANGS = ("fi", "sv", "en")
SITE = "https://www.esimerkkila.example"
TOWN = {"fi": "Esimerkkilän kaupunki", "sv": "Exempelby stad", "en": "City of Esimerkkilä"}
SECTION = {"fi": "palvelut", "sv": "tjanster", "en": "services"}

# Services a municipality describes: (fi, sv, en).
SERVICES: tuple[tuple[str, str, str], ...] = (
    ("kirjasto", "bibliotek", "library"),
    ("päiväkoti", "daghem", "day-care centre"),
    ("perhepäivähoito", "familjedagvård", "family day care"),
    ("esiopetus", "förskoleundervisning", "pre-primary education"),
    ("peruskoulu", "grundskola", "comprehensive school"),
    ("lukio", "gymnasium", "upper secondary school"),
    ("kansalaisopisto", "medborgarinstitut", "adult education centre"),
    ("musiikkiopisto", "musikinstitut", "music institute"),
    ("uimahalli", "simhall", "swimming hall"),
    ("liikuntahalli", "idrottshall", "sports hall"),
    ("urheilukenttä", "idrottsplan", "sports field"),
    ("nuorisotalo", "ungdomsgård", "youth centre"),
    ("asukastila", "invånarlokal", "residents' space"),
    ("terveysasema", "hälsostation", "health centre"),
    ("neuvola", "rådgivning", "maternity and child health clinic"),
    ("hammashoitola", "tandklinik", "dental clinic"),
    ("kotihoito", "hemvård", "home care"),
    ("palvelutalo", "servicehus", "service house"),
    ("rakennusvalvonta", "byggnadstillsyn", "building control"),
    ("kaavoitus", "planläggning", "land use planning"),
    ("jätehuolto", "avfallshantering", "waste management"),
    ("kierrätyspiste", "återvinningsstation", "recycling point"),
    ("vesihuolto", "vattentjänster", "water supply"),
    ("katujen kunnossapito", "gatuunderhåll", "street maintenance"),
    ("pysäköinti", "parkering", "parking"),
    ("joukkoliikenne", "kollektivtrafik", "public transport"),
    ("koulukuljetus", "skoltransport", "school transport"),
    ("kuljetuspalvelu", "färdtjänst", "transport service"),
    ("ympäristönsuojelu", "miljövård", "environmental protection"),
    ("puistot", "parker", "parks"),
    ("leikkipuisto", "lekpark", "playground"),
    ("viljelypalsta", "odlingslott", "allotment garden"),
    ("museo", "museum", "museum"),
    ("kulttuuritalo", "kulturhus", "cultural centre"),
    ("matkailuneuvonta", "turistinformation", "tourist information"),
    ("työllisyyspalvelut", "sysselsättningstjänster", "employment services"),
    ("yrityspalvelut", "företagstjänster", "business services"),
    ("vuokra-asunnot", "hyresbostäder", "rental housing"),
    ("asukaspysäköinti", "boendeparkering", "residents' parking"),
    ("tilavaraus", "lokalbokning", "room booking"),
)
# What a page about a service is about: (fi, sv, en).
TOPICS: tuple[tuple[str, str, str], ...] = (
    ("aukioloajat ja yhteystiedot", "öppettider och kontaktuppgifter", "opening hours and contact"),
    ("hakeminen", "ansökan", "how to apply"),
    ("maksut ja alennukset", "avgifter och rabatter", "fees and discounts"),
    ("saavutettavuus", "tillgänglighet", "accessibility"),
    ("ajanvaraus", "tidsbokning", "appointments"),
    ("asiakasohjeet", "anvisningar för kunder", "instructions for customers"),
    ("tilat ja varustus", "lokaler och utrustning", "premises and equipment"),
    ("poikkeusaikataulut", "undantagstider", "exceptional schedules"),
    ("palaute", "respons", "feedback"),
    ("henkilökunta", "personal", "staff"),
    ("tapahtumat", "evenemang", "events"),
    ("remontti", "renovering", "renovation"),
    ("lupahakemukset", "tillståndsansökningar", "permit applications"),
    ("palvelun kuvaus", "beskrivning av tjänsten", "service description"),
    ("usein kysyttyä", "vanliga frågor", "frequently asked questions"),
    ("ilmoittautuminen", "anmälan", "registration"),
)
# Made-up district names (first part + second part), the same in every language.
PLACE_FIRST = (
    "Kallio", "Mäki", "Koivu", "Haka", "Lehto", "Suo", "Ranta", "Niitty", "Kuusi", "Pihla",
    "Vaara", "Lahti", "Saari", "Harju", "Kivi", "Metsä", "Järvi", "Pelto", "Sorsa", "Kotka",
    "Haapa", "Leppä", "Tammi", "Vaahtera", "Kaski",
)  # fmt: skip
PLACE_SECOND = (
    "nummi", "niemi", "lahti", "kylä", "mäki", "vaara", "ranta", "kangas", "puisto", "harju",
    "joki", "koski", "linna", "saari", "pelto", "lampi", "aho", "salmi",
)  # fmt: skip
# Municipal terms mentioned in running text: (fi, sv, en).
TERMS: tuple[tuple[str, str, str], ...] = (
    ("asiointipalvelu", "e-tjänst", "online service"),
    ("asiakasmaksu", "klientavgift", "client fee"),
    ("kotikuntalaki", "lagen om hemkommun", "Municipality of Residence Act"),
    ("varhaiskasvatus", "småbarnspedagogik", "early childhood education"),
    ("rakennuslupa", "bygglov", "building permit"),
    ("toimenpidelupa", "åtgärdstillstånd", "action permit"),
    ("jäteastia", "avfallskärl", "waste container"),
    ("biojäte", "bioavfall", "biowaste"),
    ("kirjastokortti", "bibliotekskort", "library card"),
    ("liikuntapassi", "motionspass", "sports pass"),
    ("henkilöllisyystodistus", "identitetsbevis", "proof of identity"),
    ("valtakirja", "fullmakt", "power of attorney"),
    ("esteettömyys", "tillgänglighet", "accessibility"),
    ("induktiosilmukka", "induktionsslinga", "induction loop"),
    ("pyörätuoli", "rullstol", "wheelchair"),
    ("palveluneuvonta", "servicerådgivning", "service advice"),
    ("kaupunginhallitus", "stadsstyrelsen", "city board"),
    ("lautakunta", "nämnden", "committee"),
    ("päätös", "beslut", "decision"),
    ("oikaisuvaatimus", "begäran om omprövning", "request for a review"),
    ("tulotiedot", "inkomstuppgifter", "income details"),
    ("lukuvuosi", "läsår", "school year"),
    ("kesäaika", "sommartid", "summer season"),
    ("vuokrasopimus", "hyresavtal", "rental agreement"),
    ("asukaskysely", "invånarenkät", "residents' survey"),
    ("kaavaluonnos", "planutkast", "draft plan"),
    ("tonttijako", "tomtindelning", "plot division"),
    ("katulupa", "gatutillstånd", "street permit"),
    ("pysäköintitunnus", "parkeringstillstånd", "parking permit"),
    ("liikuntarajoitteinen", "rörelsehindrad", "person with reduced mobility"),
)
WEEKDAYS = {
    "fi": ("maanantaisin", "tiistaisin", "keskiviikkoisin", "torstaisin", "perjantaisin"),
    "sv": ("på måndagar", "på tisdagar", "på onsdagar", "på torsdagar", "på fredagar"),
    "en": ("on Mondays", "on Tuesdays", "on Wednesdays", "on Thursdays", "on Fridays"),
}
# Sentences of running text; {s} the service, {d} the district, {t}/{u} terms, {w} a weekday,
# {h} an hour, {p} a phone number.
SENTENCES = {
    "fi": (
        "Palvelu on tarkoitettu kaikille kunnan asukkaille iästä riippumatta.",
        "Toimipiste sijaitsee alueella {d}, ja sinne pääsee hyvin julkisilla kulkuneuvoilla.",
        "Asiakasmaksut määräytyvät perheen koon ja tulojen mukaan.",
        "Hakemus tehdään sähköisesti palvelussa {t} tai paperilomakkeella.",
        "Lisätietoja saat palveluneuvonnasta numerosta {p}.",
        "Palvelupiste on avoinna {w} kello {h} alkaen.",
        "Ota mukaan {t}, kun asioit ensimmäistä kertaa.",
        "Päätös lähetetään kotiin noin kahden viikon kuluessa.",
        "Tiloissa on {u}, ja sisäänkäynti on esteetön.",
        "Palvelun järjestää kaupungin sivistystoimi yhdessä alueen yhdistysten kanssa.",
        "Muutoksista tiedotetaan kaupungin verkkosivuilla ja paikallislehdessä.",
        "Voit antaa palautetta palvelusta sähköisellä lomakkeella tai puhelimitse.",
        "Kesäaikana aukioloajat voivat poiketa tavallisesta.",
        "Asiakkaan tulee ilmoittaa muutoksista, jotka vaikuttavat asiakasmaksuun.",
        "Alueen {d} asukkaat voivat käyttää myös naapurialueen palveluja.",
        "Hakemukseen liitetään {t} ja tarvittaessa {u}.",
        "Päätökseen tyytymätön voi tehdä oikaisuvaatimuksen 30 päivän kuluessa.",
        "Palvelua kehitetään asukkailta saadun palautteen perusteella.",
        "Ajan voi varata myös asiointipalvelussa vuorokauden ympäri.",
        "Pysäköintipaikkoja on rajoitetusti, joten suosittelemme joukkoliikennettä.",
    ),
    "sv": (
        "Tjänsten är avsedd för alla invånare i kommunen oberoende av ålder.",
        "Verksamhetsstället ligger i området {d} och nås lätt med kollektivtrafik.",
        "Klientavgifterna bestäms enligt familjens storlek och inkomster.",
        "Ansökan görs elektroniskt via {t} eller på en pappersblankett.",
        "Mer information får du av servicerådgivningen på numret {p}.",
        "Servicepunkten är öppen {w} från klockan {h}.",
        "Ta med {t} när du besöker oss första gången.",
        "Beslutet skickas hem inom cirka två veckor.",
        "I lokalerna finns {u} och ingången är tillgänglig.",
        "Tjänsten ordnas av stadens bildningsväsende tillsammans med lokala föreningar.",
        "Om ändringar informeras på stadens webbplats och i lokaltidningen.",
        "Du kan ge respons på tjänsten med en elektronisk blankett eller per telefon.",
        "Under sommaren kan öppettiderna avvika från de normala.",
        "Klienten ska meddela ändringar som påverkar klientavgiften.",
        "Invånarna i området {d} kan också använda tjänsterna i grannområdet.",
        "Till ansökan bifogas {t} och vid behov {u}.",
        "Den som är missnöjd med beslutet kan begära omprövning inom 30 dagar.",
        "Tjänsten utvecklas utifrån responsen från invånarna.",
        "Du kan också boka tid i e-tjänsten dygnet runt.",
        "Antalet parkeringsplatser är begränsat, så vi rekommenderar kollektivtrafik.",
    ),
    "en": (
        "The service is intended for all residents of the municipality regardless of age.",
        "The office is in the {d} area and easy to reach by public transport.",
        "Client fees are based on the size and income of the family.",
        "You can apply electronically through the {t} or on a paper form.",
        "For more information, call the service advice line at {p}.",
        "The service point is open {w} from {h} o'clock.",
        "Bring your {t} when you visit for the first time.",
        "The decision is sent to your home within about two weeks.",
        "The premises have an {u} and the entrance is accessible.",
        "The service is organised by the city's education department with local associations.",
        "Changes are announced on the city's website and in the local newspaper.",
        "You can give feedback on the service with an online form or by phone.",
        "In the summer season the opening hours may differ from the usual ones.",
        "Clients must report changes that affect the client fee.",
        "Residents of {d} may also use the services of the neighbouring area.",
        "Attach the {t} to the application and, if needed, the {u}.",
        "If you are not satisfied with the decision, you can request a review within 30 days.",
        "The service is developed on the basis of residents' feedback.",
        "You can also book an appointment in the online service around the clock.",
        "Parking is limited, so we recommend public transport.",
    ),
}
HEADINGS = {
    "fi": (
        "Kenelle palvelu on tarkoitettu", "Näin haet", "Maksut", "Aukioloajat", "Yhteystiedot",
        "Saavutettavuus", "Lisätietoja", "Ajankohtaista", "Muutoksenhaku", "Kulkuyhteydet",
    ),
    "sv": (
        "För vem är tjänsten", "Så här ansöker du", "Avgifter", "Öppettider", "Kontaktuppgifter",
        "Tillgänglighet", "Mer information", "Aktuellt", "Ändringssökande", "Trafikförbindelser",
    ),
    "en": (
        "Who the service is for", "How to apply", "Fees", "Opening hours", "Contact details",
        "Accessibility", "More information", "News", "Appeals", "Getting there",
    ),
}  # fmt: skip
CHROME = {
    "fi": (
        "Hyväksy evästeet", "Käytämme sivustolla evästeitä käyttökokemuksen parantamiseksi.",
        ("Etusivu", "Asuminen ja ympäristö", "Kasvatus ja opetus", "Kulttuuri ja vapaa-aika",
         "Sosiaali- ja terveyspalvelut", "Työ ja yrittäminen", "Päätöksenteko", "Asiointi",
         "Tietoa kaupungista", "Uutiset", "Tapahtumat", "Yhteystiedot"),
        "Hae sivustolta", "Katso myös", "Päivitetty",
    ),
    "sv": (
        "Godkänn kakor", "Vi använder kakor på webbplatsen för att förbättra användarupplevelsen.",
        ("Startsida", "Boende och miljö", "Fostran och utbildning", "Kultur och fritid",
         "Social- och hälsovård", "Arbete och företagande", "Beslutsfattande", "E-tjänster",
         "Om staden", "Nyheter", "Evenemang", "Kontaktuppgifter"),
        "Sök på webbplatsen", "Se också", "Uppdaterad",
    ),
    "en": (
        "Accept cookies", "We use cookies on this site to improve your experience.",
        ("Home", "Housing and environment", "Education", "Culture and leisure",
         "Social and health services", "Work and business", "Decision-making", "E-services",
         "About the city", "News", "Events", "Contact"),
        "Search the site", "See also", "Updated",
    ),
}  # fmt: skip
# Share of service pages that also have a Swedish / an English version.
SWEDISH_SHARE = 0.45
ENGLISH_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class GeneratedPage:
    path: str  # relative to the output folder
    lang: str
    url: str
    title: str
    group: int  # pages of one group are language versions of one service page
    html: str


def _district(n: int) -> str:
    first, second = divmod(n, len(PLACE_SECOND))
    return PLACE_FIRST[first % len(PLACE_FIRST)] + PLACE_SECOND[second]


def _slug(text: str) -> str:
    table = str.maketrans("äöåé", "aoae")
    words = ("".join(c for c in w if c.isalnum()) for w in text.lower().translate(table).split())
    return "-".join(w for w in words if w)


def _titles(combo: int) -> tuple[dict[str, str], str]:
    """Titles per language and the district of one (service, topic, district) combination."""
    places = len(PLACE_FIRST) * len(PLACE_SECOND)
    rest, place = divmod(combo, places)
    rest, topic = divmod(rest, len(TOPICS))
    round_, service = divmod(rest, len(SERVICES))
    district = _district(place)
    extra = f" {round_ + 1}" if round_ else ""
    titles = {
        lang: f"{SERVICES[service][i].capitalize()} {district}{extra} – {TOPICS[topic][i]}"
        for i, lang in enumerate(LANGS)
    }
    return titles, district


def _sentence(rng: random.Random, lang: str, district: str) -> str:
    i = LANGS.index(lang)
    t, u = rng.sample(TERMS, 2)
    return rng.choice(SENTENCES[lang]).format(
        d=district,
        t=t[i],
        u=u[i],
        w=rng.choice(WEEKDAYS[lang]),
        h=rng.choice((8, 9, 10, 12, 14)),
        p=f"09 {rng.randint(100, 999)} {rng.randint(1000, 9999)}",
    )


def _page_html(
    rng: random.Random,
    lang: str,
    title: str,
    url: str,
    alternates: dict[str, str],
    district: str,
    related: Sequence[tuple[str, str]],
) -> str:
    accept, cookie_text, menu, search, see_also, updated = CHROME[lang]
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)} | {TOWN[lang]}</title>",
        f'<link rel="canonical" href="{url}">',
        *(f'<link rel="alternate" hreflang="{h}" href="{u}">' for h, u in alternates.items()),
        '<link rel="stylesheet" href="/static/site.css">',
        "<script>window.dataLayer = window.dataLayer || [];</script>",
        "</head>",
        "<body>",
        f'<div class="cookie-consent" role="dialog"><p>{cookie_text}</p>'
        f"<button>{accept}</button></div>",
        f'<header class="site-header"><a class="logo" href="/{lang}/">{TOWN[lang]}</a>',
        '<nav aria-label="main"><ul>',
        *(f'<li><a href="/{lang}/{_slug(m)}">{m}</a></li>' for m in menu),
        "</ul></nav>",
        f'<form role="search" action="/{lang}/search"><label>{search}'
        '<input name="q"></label><button>→</button></form>',
        "</header>",
        f'<nav class="breadcrumb"><a href="/{lang}/">{menu[0]}</a> › {escape(title)}</nav>',
        '<main id="content"><article>',
        f"<h1>{escape(title)}</h1>",
        f'<p class="lead">{_sentence(rng, lang, district)} {_sentence(rng, lang, district)}</p>',
    ]
    for heading in rng.sample(HEADINGS[lang], rng.randint(2, 5)):
        out.append(f"<h2>{heading}</h2>")
        for _ in range(rng.randint(1, 2)):
            n = rng.randint(2, 5)
            out.append(f"<p>{' '.join(_sentence(rng, lang, district) for _ in range(n))}</p>")
        if rng.random() < 0.3:
            items = rng.sample(TERMS, 3)
            i = LANGS.index(lang)
            out.append("<ul>" + "".join(f"<li>{t[i]}</li>" for t in items) + "</ul>")
    day = rng.randint(1, 28)
    month = rng.randint(1, 12)
    out += [
        f'<p class="updated">{updated} {day}.{month}.2026</p>',
        "</article></main>",
        f"<aside><h2>{see_also}</h2><ul>",
        *(f'<li><a href="{u}">{escape(t)}</a></li>' for t, u in related),
        "</ul></aside>",
        f"<footer><p>{TOWN[lang]}, PL 1, 00001 Esimerkkilä</p><p>09 123 4567</p></footer>",
        '<script src="/static/app.js" defer></script>',
        "</body></html>",
    ]
    return "\n".join(out)


def generate_pages(count: int, seed: int = 7) -> Iterator[GeneratedPage]:
    """``count`` pages: each service page in Finnish, some also in Swedish and English."""
    rng = random.Random(seed)
    places = len(PLACE_FIRST) * len(PLACE_SECOND)
    combos = len(SERVICES) * len(TOPICS) * places
    # Distinct (service, topic, district) titles; beyond that many, numbered repeats.
    order = rng.sample(range(combos), min(count, combos))
    made = group = 0
    recent: list[tuple[str, str]] = []
    while made < count:
        combo = order[group] if group < len(order) else group
        titles, district = _titles(combo)
        langs = ["fi"]
        if rng.random() < SWEDISH_SHARE:
            langs.append("sv")
        if rng.random() < ENGLISH_SHARE:
            langs.append("en")
        langs = langs[: count - made]
        urls = {
            lang: f"{SITE}/{lang}/{SECTION[lang]}/{group:05d}-{_slug(titles[lang])}"
            for lang in langs
        }
        for lang in langs:
            alternates = {h: u for h, u in urls.items() if h != lang} if len(langs) > 1 else {}
            html = _page_html(
                rng, lang, titles[lang], urls[lang], alternates, district, recent[-4:]
            )
            yield GeneratedPage(
                path=f"{lang}/{group:05d}.html",
                lang=lang,
                url=urls[lang],
                title=titles[lang],
                group=group,
                html=html,
            )
            made += 1
        recent.append((titles["fi"], urls["fi"]))
        group += 1


def write_pages(folder: Path, count: int, seed: int = 7) -> list[GeneratedPage]:
    """Write the pages under ``folder``; returns them without their HTML."""
    pages = []
    for page in generate_pages(count, seed):
        path = folder / page.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page.html, encoding="utf-8")
        pages.append(GeneratedPage(page.path, page.lang, page.url, page.title, page.group, html=""))
    return pages


def pick_probes(pages: Sequence[GeneratedPage], k: int, seed: int) -> list[GeneratedPage]:
    """``k`` pages spread over the site whose titles are the probe queries."""
    rng = random.Random(seed + 1)
    return rng.sample(list(pages), min(k, len(pages)))


# --- Measuring ------------------------------------------------------------------------------


def _ingest(folder: Path, data: Path) -> tuple[float, str]:
    """``neuvonta kb ingest FOLDER --data-dir DATA`` in this process: (seconds, its output)."""
    import click

    from agents.cli import kb_ingest

    out = io.StringIO()
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out):
            kb_ingest(str(folder), data_dir=data, ptv_api=None, timeout=20.0)
    except click.exceptions.Exit as e:
        raise SystemExit(f"kb ingest failed (exit {e.exit_code}):\n{out.getvalue()}") from e
    return time.perf_counter() - started, out.getvalue()


def _stored_documents(settings: Settings) -> list[Document]:
    """The knowledge base as the server reads it at start."""
    from agents.knowledge.store import KnowledgeStore
    from router.cli_support import run_on_database

    return run_on_database(settings, lambda engine: KnowledgeStore(engine).all())


def _top_doc(agent: OfflineAgent, text: str) -> tuple[str | None, float]:
    """(top document of the agent's assessment, milliseconds)."""
    from agents.base import TriageRequest

    started = time.perf_counter()
    assessment = agent.assess(TriageRequest(text=text, channel="web"))
    ms = (time.perf_counter() - started) * 1000
    return (assessment.ranked_doc_ids[0] if assessment.ranked_doc_ids else None), ms


@dataclass(frozen=True, slots=True)
class EmbeddingCost:
    """Seconds to embed a text by its length: timed batches, interpolated between them."""

    lengths: tuple[float, ...]  # mean characters of each timed batch, ascending
    seconds_per_text: tuple[float, ...]
    sample: int  # texts timed

    def seconds(self, lengths: Sequence[int] | npt.NDArray[np.int64]) -> float:
        import numpy as np

        per_text = np.interp(np.asarray(lengths), self.lengths, self.seconds_per_text)
        return float(per_text.sum())


def sample_texts(pages: Sequence[tuple[str, str]], size: int) -> list[str]:
    """``size`` of the texts the indexer embeds for these (path, HTML) pages (passages and
    titles), spread evenly over their lengths."""
    from agents.knowledge.ingest import pages_to_documents, parse_html
    from agents.passages import all_passages, document_titles

    parsed = [(path, parse_html(html)) for path, html in pages]
    docs, _ = pages_to_documents(parsed, lambda _: "fi")
    texts = sorted(
        [p.indexed_text for p in all_passages(docs)] + [t.text for t in document_titles(docs)],
        key=len,
    )
    if len(texts) <= size:
        return texts
    return [texts[round(i * (len(texts) - 1) / (size - 1))] for i in range(size)]


def embedding_cost(texts: Sequence[str]) -> EmbeddingCost:
    """Time the passage embedding of ``texts`` in the indexer's batches (by length)."""
    from agents.vectors import BATCH, E5Embedder

    model = E5Embedder()
    model.passage(["warm-up"])
    ordered = sorted(texts, key=len)
    lengths, seconds = [], []
    for start in range(0, len(ordered), BATCH):
        batch = ordered[start : start + BATCH]
        took = []
        for _ in range(REPEATS):  # the fastest of a few: other work on the machine is noise
            began = time.perf_counter()
            model.passage(batch)
            took.append(time.perf_counter() - began)
        lengths.append(sum(map(len, batch)) / len(batch))
        seconds.append(min(took) / len(batch))
    return EmbeddingCost(tuple(lengths), tuple(seconds), len(ordered))


def _dense_progress(
    agent: OfflineAgent, seconds: float, cost: EmbeddingCost
) -> dict[str, Any] | None:
    """Watch the vectors arrive for ``seconds``, with a progress bar of ``ready_fraction``.

    The indexer embeds short texts first, so the vectors/s of the first minutes overstate the
    pace: the time to complete is projected from ``cost`` (measured on texts of all lengths).
    """
    import numpy as np
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    dense = agent.dense
    if dense is None:
        return None
    # The texts in the indexer's order: passages, then titles (see OfflineAgent).
    chars = np.array(
        [len(p.indexed_text) for p in agent.passages] + [len(t.text) for t in agent.titles]
    )

    first_entries = np.zeros(len(chars), dtype=bool)
    first_entries[dense.fill_order()[: dense.first_count]] = True

    def snapshot() -> tuple[float, npt.NDArray[np.bool_]]:
        return time.perf_counter(), dense.ready.copy()

    start_fraction = agent.ready_fraction
    started = time.perf_counter()
    first: tuple[float, npt.NDArray[np.bool_]] | None = None  # when the first vector arrived
    with Progress(
        TextColumn("dense vectors"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f} % ready"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        # Steps of 0.01 %: the bar shows ready_fraction.
        task = bar.add_task(
            "dense", total=10_000, completed=round(start_fraction * 10_000), rate=""
        )
        begin = snapshot()
        while time.perf_counter() - started < seconds and agent.ready_fraction < 1.0:
            time.sleep(0.5)
            now = snapshot()
            if first is None and now[1].sum() > begin[1].sum():
                first = now
            rate = ""
            if first is not None and now[0] > first[0] + 1:
                done = int(now[1].sum() - first[1].sum())
                rate = f"{done / (now[0] - first[0]):.1f} vectors/s"
            bar.update(task, completed=round(agent.ready_fraction * 10_000), rate=rate)
    end = snapshot()
    # The pace once vectors flow: the model load and warm-up come first.
    since = first if first is not None and end[0] > first[0] else begin
    span = max(end[0] - since[0], 1e-9)
    left = ~end[1]
    vectors_per_s = int((end[1] & ~since[1]).sum()) / span
    return {
        "watched_s": round(end[0] - started, 1),
        "vectors_total": len(chars),
        "ready_fraction_start": round(start_fraction, 4),
        "ready_fraction_end": round(agent.ready_fraction, 4),
        "computed": int(end[1].sum() - begin[1].sum()),
        "model_load_s": round(first[0] - started, 1) if first else None,
        "vectors_per_s": round(vectors_per_s, 1),
        "cost_sample": cost.sample,
        "cost_ms_shortest": round(1000 * cost.seconds_per_text[0], 1),
        "cost_ms_longest": round(1000 * cost.seconds_per_text[-1], 1),
        "projected_remaining_s": round(cost.seconds(chars[left])),
        # Until every title and first passage has a vector: then dense ranking joins.
        "usable": dense.usable,
        "projected_usable_s": round(cost.seconds(chars[left & first_entries])),
        "projected_remaining_s_by_count": (
            round(int(left.sum()) / vectors_per_s) if vectors_per_s else None
        ),
        "error": dense.error,
    }


def measure(pages: int, seed: int, dense_seconds: float, probes: int, keep: Path | None) -> Any:
    # Loaded before any clock runs: a server has them loaded already.
    from agents.offline import OfflineAgent
    from router.app import build_agent
    from router.cli_support import settings_for

    for leak in ("DATABASE_URL", "NEUVONTA_DATABASE_URL"):
        os.environ.pop(leak, None)
    # Other work on the machine at the start (the figures are wall-clock times).
    load_before = os.getloadavg()[0]
    if keep is not None and keep.exists() and any(keep.iterdir()):
        raise SystemExit(f"{keep} is not empty: give a new or empty folder to keep the pages in")
    with tempfile.TemporaryDirectory(prefix="neuvonta-kb-bench-") as tmp:
        folder = keep or Path(tmp) / "site"
        data = Path(tmp) / "var"
        print(f"writing {pages} pages to {folder} …", file=sys.stderr)
        started = time.perf_counter()
        generated = write_pages(folder, pages, seed)
        generate_s = time.perf_counter() - started
        html_bytes = sum((folder / p.path).stat().st_size for p in generated)

        cost = None
        if dense_seconds > 0:
            # Before anything is timed: e5 on a sample of these pages' texts, all lengths.
            print("timing passage embedding on a sample …", file=sys.stderr)
            some = [(p.path, (folder / p.path).read_text(encoding="utf-8")) for p in generated]
            cost = embedding_cost(sample_texts(some[:300], COST_SAMPLE))

        print("neuvonta kb ingest …", file=sys.stderr)
        ingest_s, ingest_out = _ingest(folder, data)

        print("reading the knowledge base and building the agent …", file=sys.stderr)
        settings = settings_for(data)
        started = time.perf_counter()
        docs = _stored_documents(settings)
        load_s = time.perf_counter() - started
        agent = build_agent(settings, docs)
        assert isinstance(agent, OfflineAgent)
        built_s = time.perf_counter() - started
        chosen = pick_probes(generated, probes, seed)
        top, first_ms = _top_doc(agent, chosen[0].title)
        searchable_s = time.perf_counter() - started
        results = [(top, first_ms)] + [_top_doc(agent, p.title) for p in chosen[1:]]
        by_url = {d.url: d.id for d in docs}
        expected = [_group_doc(by_url, generated, p) for p in chosen]
        hits = sum(t == e for (t, _), e in zip(results, expected, strict=True))
        dense = _dense_progress(agent, dense_seconds, cost) if cost is not None else None
    langs = Counter(p.lang for p in generated)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(load_before, 2),
        "pages": pages,
        "pages_by_lang": dict(sorted(langs.items())),
        "html_mb": round(html_bytes / 1e6, 1),
        "documents": len(docs),
        "passages": len(agent.passages),
        "generate_s": round(generate_s, 2),
        "ingest_s": round(ingest_s, 2),
        "ingest_summary": next(
            (line for line in ingest_out.splitlines() if line.startswith("added ")), ""
        ),
        "load_docs_s": round(load_s, 2),
        "agent_built_s": round(built_s - load_s, 2),
        "searchable_s": round(searchable_s, 2),
        "ingest_plus_searchable_s": round(ingest_s + searchable_s, 2),
        "target_s": TARGET_SECONDS,
        "target_met": ingest_s + searchable_s < TARGET_SECONDS,
        "probes": len(chosen),
        "probes_first": hits,
        "probe_ms": [round(ms, 1) for _, ms in results[1:]],
        "dense": dense,
    }


def _group_doc(
    by_url: dict[str | None, str], generated: Sequence[GeneratedPage], page: GeneratedPage
) -> str | None:
    """The document a page ended up in: language versions merge under the Finnish page's
    URL (every group has one)."""
    fi = next(p for p in generated if p.group == page.group and p.lang == "fi")
    return by_url.get(fi.url)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no vectors arrived)"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def figures_text(r: dict[str, Any]) -> str:
    langs = " · ".join(f"{k} {v}" for k, v in r["pages_by_lang"].items())
    verdict = "met" if r["target_met"] else "MISSED"
    lines = [
        f"KB ingest: {r['pages']} HTML pages ({langs}; {r['html_mb']} MB) → "
        f"{r['documents']} documents, {r['passages']} passages",
        f"  {r['cpus']} cores, load average {r['load_average_1m']} at the start · {r['date']}",
        f"  kb ingest (read, parse, write)  {r['ingest_s']:7.1f} s   {r['ingest_summary']}",
        f"  lexically searchable after      {r['searchable_s']:7.1f} s   (documents from the "
        f"database {r['load_docs_s']:.1f} s, agent built {r['agent_built_s']:.1f} s, then the "
        "lexical index and the first query)",
        f"  ingest + searchable             {r['ingest_plus_searchable_s']:7.1f} s   "
        f"target < {r['target_s']:.0f} s: {verdict}",
        f"  title queries, page first       {r['probes_first']}/{r['probes']}"
        + (
            f"   ({min(r['probe_ms']):.0f}–{max(r['probe_ms']):.0f} ms a query, lexical)"
            if r["probe_ms"]
            else ""
        ),
    ]
    if d := r["dense"]:
        lines.append(
            f"  dense vectors, watched {d['watched_s']:.0f} s   {d['vectors_per_s']:.1f} vectors/s "
            f"(after {d['model_load_s']} s model load) · ready "
            f"{100 * d['ready_fraction_start']:.1f} → {100 * d['ready_fraction_end']:.1f} % "
            f"of {d['vectors_total']}"
        )
        lines.append(
            "  dense ranking joins           "
            + (
                "already (every title and first passage has its vector)"
                if d["usable"]
                else f"≈ {_duration(d['projected_usable_s'])} more   (once every title and "
                "first passage has its vector; lexical until then)"
            )
        )
        lines.append(
            f"  the rest projected in         ≈ {_duration(d['projected_remaining_s'])} more   "
            f"(e5 timed on {d['cost_sample']} texts of all lengths, "
            f"{d['cost_ms_shortest']}–{d['cost_ms_longest']} ms a text; at the vectors/s of "
            f"the short texts that go first: {_duration(d['projected_remaining_s_by_count'])})"
        )
        if d["error"]:
            lines.append(f"  dense indexing failed: {d['error']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--dense-seconds", type=float, default=30.0, help="how long to watch vectors arrive"
    )
    ap.add_argument("--probes", type=int, default=5, help="title queries to check")
    ap.add_argument(
        "--keep-pages", type=Path, default=None, help="write the pages here and keep them"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.pages < 1:
        ap.error("--pages must be at least 1")
    result = measure(args.pages, args.seed, args.dense_seconds, args.probes, args.keep_pages)
    print(json.dumps(result, indent=2) if args.json else figures_text(result))


if __name__ == "__main__":
    main()
