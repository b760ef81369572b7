"""Knowledge-base sources → ``Document``s, and the idempotent sync into the store.

Sources (``neuvonta kb ingest``):

- the documents JSONL format of ``data/README.md``;
- Suomi.fi Palvelutietovaranto (PTV) Open API service JSON: a list of services, one result page
  ``{"itemList": [...]}`` or one service; or ``ptv:<municipality code>``, fetched page by page
  from ``Service/list/area/Municipality/code/<code>``;
- saved HTML pages (one file or a folder) and sitemaps (a file or a URL; the pages are fetched):
  title, headings and main text, without navigation, header, footer, scripts and styles.

The parsers are pure (text in, documents out); only ``load_source`` touches files and the
network (httpx, with a timeout). ``sync`` makes the store hold exactly one source's current
documents: new ones added, changed ones (by content hash) replaced, unchanged ones left alone,
and the ones that vanished from that source removed. Other sources' documents are never touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from agents.base import SUPPORTED_LANGUAGES, Document
from agents.knowledge.store import KnowledgeStore, content_hash

M = TypeVar("M", bound=BaseModel)
Kind = Literal["jsonl", "ptv", "html", "sitemap"]
# (stage, done, total): e.g. ("fetching pages", 3, 40); total 0 when not known yet.
Progress = Callable[[str, int, int], None]

PTV_API = "https://api.palvelutietovaranto.suomi.fi/api/v11"
PTV_ATTRIBUTION = "Suomi.fi Palvelutietovaranto (PTV)"
# serviceDescriptions types in reading order (V11 names, then the V7 names of the same fields).
PTV_TEXT_TYPES = (
    "Summary",
    "ShortDescription",
    "Description",
    "UserInstruction",
    "ServiceUserInstruction",
    "ChargeTypeAdditionalInfo",
    "ValidityTime",
    "ValidityTimeAdditionalInfo",
    "ProcessingTime",
    "ProcessingTimeAdditionalInfo",
    "DeadLine",
    "DeadLineAdditionalInfo",
    "ServiceType",
    "ServiceTypeAdditionalInfo",
)
_PTV_CLASS = re.compile(r"^P\d+")
_PTV_SPEC = re.compile(r"^ptv:(\d{1,3})$")
FETCH_TIMEOUT = 20.0
FETCH_CONCURRENCY = 4
MAX_PTV_PAGES = 200
USER_AGENT = "neuvonta-kb-ingest (+https://github.com/neuvonta)"


class SourceError(Exception):
    """The input is missing, unreadable or malformed (the user's to fix)."""


class FetchError(Exception):
    """A URL could not be fetched."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """One source's documents, ready to sync."""

    origin: str
    kind: Kind
    docs: list[Document]
    # What was left out and why, one line each (drafts, pages without text, 404s).
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SyncPlan:
    added: list[Document]
    changed: list[Document]
    unchanged: list[str]
    removed: list[str]


@dataclass(frozen=True, slots=True)
class SyncSummary:
    origin: str
    added: int
    changed: int
    unchanged: int
    removed: int
    # Vector keys of passages and titles no document has any more (their vectors can go).
    stale_vectors: frozenset[str] = frozenset()

    @property
    def modified(self) -> bool:
        return bool(self.added or self.changed or self.removed)


# --- JSON lines -----------------------------------------------------------------------------


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ()))
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def read_jsonl(text: str, model: type[M], name: str) -> list[M]:
    """One model per non-blank line; errors name the file and line."""
    out: list[M] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(model.model_validate_json(line))
            except ValidationError as e:
                raise SourceError(f"{name}, line {n}: {_first_error(e)}") from e
    return out


def parse_docs_jsonl(text: str, name: str) -> list[Document]:
    docs = read_jsonl(text, Document, name)
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            raise SourceError(f"{name}: document id {d.id!r} appears more than once")
        seen.add(d.id)
    return docs


# --- PTV ------------------------------------------------------------------------------------


def ptv_services(data: object, name: str) -> list[Mapping[str, Any]]:
    """The service objects of a PTV response: a list, a result page or a single service."""
    if isinstance(data, dict) and isinstance(data.get("itemList"), list):
        items: list[object] = data["itemList"]
    elif isinstance(data, dict) and "serviceNames" in data:
        items = [data]
    elif isinstance(data, list):
        items = data
    else:
        raise SourceError(f"{name}: not PTV service JSON (expected a list or an itemList)")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise SourceError(f"{name}: item {i} is not a PTV service (no id)")
    return items  # type: ignore[return-value]


def flatten_rich_text(value: str) -> str:
    """PTV text as plain paragraphs; draft.js JSON (PTV's rich text) becomes lines and lists."""
    text = value.replace("\r\n", "\n").strip()
    if text.startswith("{") and '"blocks"' in text:
        try:
            blocks = json.loads(text)["blocks"]
        except (ValueError, KeyError, TypeError):
            return text
        paragraphs: list[str] = []
        previous_list = False
        for n, block in enumerate(b for b in blocks if isinstance(b, dict)):
            line = str(block.get("text", "")).strip()
            kind = str(block.get("type", ""))
            is_list = kind.endswith("list-item")
            if not line:
                previous_list = False
                continue
            if is_list:
                line = f"{n + 1}. {line}" if kind.startswith("ordered") else f"- {line}"
            if is_list and previous_list:
                paragraphs[-1] += "\n" + line
            else:
                paragraphs.append(line)
            previous_list = is_list
        return "\n\n".join(paragraphs)
    return text


def _localized(items: object, types: Sequence[str]) -> dict[str, list[str]]:
    """lang → values (in ``types`` order, unknown types last) of PTV localized list items."""
    out: dict[str, list[tuple[int, str]]] = {}
    if not isinstance(items, list):
        return {}
    for item in items:
        if not isinstance(item, dict):
            continue
        lang, value, kind = item.get("language"), item.get("value"), item.get("type")
        if lang not in SUPPORTED_LANGUAGES or not isinstance(value, str) or not value.strip():
            continue
        rank = types.index(kind) if kind in types else len(types)
        out.setdefault(lang, []).append((rank, value))
    return {lang: [v for _, v in sorted(vals, key=lambda x: x[0])] for lang, vals in out.items()}


def ptv_departments(classes: object) -> tuple[str, ...]:
    """Top-level PTV service classes ("P5.2" → "P5"), from each class's code or URI."""
    found: list[str] = []
    for c in classes if isinstance(classes, list) else []:
        if not isinstance(c, dict):
            continue
        code = c.get("code") or str(c.get("uri") or "").rstrip("/").rsplit("/", 1)[-1]
        if isinstance(code, str) and (m := _PTV_CLASS.match(code.strip())):
            found.append(m.group(0))
    return tuple(dict.fromkeys(found))


def parse_ptv(data: object, name: str) -> tuple[list[Document], list[str]]:
    """Documents from PTV services (names, descriptions in fi/sv/en, service classes)."""
    docs: dict[str, Document] = {}
    skipped: list[str] = []
    for svc in ptv_services(data, name):
        sid = str(svc["id"])
        status = svc.get("publishingStatus")
        if status not in (None, "Published"):
            skipped.append(f"{sid}: publishing status {status}")
            continue
        names = _localized(svc.get("serviceNames"), ("Name", "AlternativeName", "AlternateName"))
        texts: dict[str, str] = {}
        for lang, parts in _localized(svc.get("serviceDescriptions"), PTV_TEXT_TYPES).items():
            paragraphs = list(dict.fromkeys(p for p in map(flatten_rich_text, parts) if p))
            if paragraphs:
                texts[lang] = "\n\n".join(paragraphs)
        title = {lang: vals[0].strip() for lang, vals in names.items()}
        if not texts:
            skipped.append(f"{sid} ({next(iter(title.values()), 'no name')}): no description")
            continue
        docs[sid] = Document(
            id=sid,
            url=None,
            departments=ptv_departments(svc.get("serviceClasses")),
            title=title or dict.fromkeys(texts, sid),
            text=texts,
            source=PTV_ATTRIBUTION,
        )
    return list(docs.values()), skipped


# --- HTML -----------------------------------------------------------------------------------

# Never page text: machinery and the site's chrome.
_SKIP_TAGS = {
    "head", "script", "style", "noscript", "template", "svg", "math", "nav", "aside", "form",
    "button", "select", "textarea", "iframe", "object", "canvas", "dialog",
}  # fmt: skip
# The site's chrome unless inside the main content (an article's own header keeps its title).
_CHROME_TAGS = {"header", "footer"}
_SKIP_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "dialog"}
_VOID_TAGS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
_BLOCK_TAGS = {
    "address", "article", "blockquote", "dd", "details", "div", "dl", "dt", "figcaption",
    "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "li", "main", "ol", "p", "pre",
    "section", "summary", "table", "td", "th", "tr", "ul",
}  # fmt: skip
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# <br> inside a paragraph: a line break, not a new paragraph.
_LINE_BREAK = "\x00"


@dataclass(slots=True)
class _Open:
    tag: str
    skip: bool
    main: bool
    heading: bool


@dataclass(slots=True)
class Page:
    """What a web page holds for the knowledge base."""

    url: str | None
    lang: str | None
    title: str
    paragraphs: list[str]
    alternates: dict[str, str] = field(default_factory=dict)  # hreflang → URL


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.canonical: str | None = None
        self.alternates: dict[str, str] = {}
        self.title_parts: list[str] = []
        self.in_title = False
        self.stack: list[_Open] = []
        self.skip = 0
        self.main = 0
        self.heading = 0
        self.buffer: list[str] = []
        # (inside main content, is a heading, text)
        self.blocks: list[tuple[bool, bool, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "html" and a.get("lang"):
            self.lang = a["lang"]
        if tag == "link":
            rel = a.get("rel", "").lower().split()
            if "canonical" in rel and a.get("href"):
                self.canonical = a["href"]
            if "alternate" in rel and a.get("hreflang") and a.get("href"):
                self.alternates[a["hreflang"]] = a["href"]
        if tag == "title":
            self.in_title = True
        if tag in _VOID_TAGS:
            if tag == "br":
                self.buffer.append(_LINE_BREAK)
            elif tag == "hr":
                self._flush()
            return
        if tag in _BLOCK_TAGS:
            self._flush()
        is_main = tag in ("main", "article") or a.get("role") == "main"
        skip = (
            tag in _SKIP_TAGS
            or (tag in _CHROME_TAGS and not self.main)
            or a.get("role", "") in _SKIP_ROLES
            or "hidden" in a
            or a.get("aria-hidden") == "true"
        )
        entry = _Open(tag, skip, is_main, tag in _HEADINGS)
        self.stack.append(entry)
        self._count(entry, 1)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in _BLOCK_TAGS:
            self._flush()
        if not any(e.tag == tag for e in self.stack):
            return
        while self.stack:
            entry = self.stack.pop()
            self._count(entry, -1)
            if entry.tag == tag:
                break

    def _count(self, entry: _Open, step: int) -> None:
        self.skip += step * entry.skip
        self.main += step * entry.main
        self.heading += step * entry.heading

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title_parts.append(data)
        elif not self.skip:
            self.buffer.append(data)

    def _flush(self) -> None:
        lines = (" ".join(line.split()) for line in "".join(self.buffer).split(_LINE_BREAK))
        text = "\n".join(line for line in lines if line)
        self.buffer = []
        if text:
            self.blocks.append((self.main > 0, self.heading > 0, text))

    def close(self) -> None:
        super().close()
        self._flush()


def _sentence(heading: str) -> str:
    """A heading ends like a sentence, so it does not run into the text under it."""
    return heading if heading[-1] in ".:!?" else heading + "."


def parse_html(text: str, url: str | None = None) -> Page:
    """Title, headings and main text of a page (pure; ``url`` as fetched or from a sitemap)."""
    parser = _PageParser()
    parser.feed(text)
    parser.close()
    blocks = parser.blocks
    if any(in_main for in_main, _, _ in blocks):
        blocks = [b for b in blocks if b[0]]
    title_tag = " ".join("".join(parser.title_parts).split())
    first_heading = next((t for _, is_heading, t in blocks if is_heading), None)
    title = first_heading or title_tag
    paragraphs: list[str] = []
    for i, (_, is_heading, t) in enumerate(blocks):
        if i == 0 and is_heading and t == title:
            continue  # the page's own heading: retrieval prefixes every passage with the title
        p = _sentence(t) if is_heading else t
        if not paragraphs or paragraphs[-1] != p:
            paragraphs.append(p)
    base = url or parser.canonical
    canonical = urljoin(base, parser.canonical) if parser.canonical and base else None
    page_url = canonical or url
    lang = parser.lang.split("-")[0].strip().lower() if parser.lang else None
    alternates = {
        h.split("-")[0].lower(): urljoin(page_url, href) if page_url else href
        for h, href in parser.alternates.items()
        if h.lower() != "x-default"
    }
    return Page(page_url, lang or None, title, paragraphs, alternates)


def _norm_url(url: str) -> str:
    return urldefrag(url)[0].rstrip("/")


def web_doc_id(key: str) -> str:
    return "web-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def pages_to_documents(
    pages: Sequence[tuple[str, Page]], detect: Callable[[str], str]
) -> tuple[list[Document], list[str]]:
    """One document per page, language versions of the same page (hreflang) merged.

    ``pages`` are (key, page): the key (URL or file path) names pages without a URL.
    ``detect`` gives the language of pages that do not declare one.
    """
    skipped: list[str] = []
    kept: list[tuple[str, Page, str]] = []
    seen: dict[str, str] = {}
    for key, page in pages:
        body = "\n\n".join(page.paragraphs)
        if not body.strip():
            skipped.append(f"{page.url or key}: no text")
            continue
        if page.url and (earlier := seen.get(_norm_url(page.url))):
            # e.g. http and https, or pages whose canonical URL is another page
            skipped.append(f"{key}: same URL as {earlier} ({page.url})")
            continue
        if page.url:
            seen[_norm_url(page.url)] = key
        kept.append((key, page, page.lang or detect(body)))
    # Union the pages that name each other as language versions.
    index = {_norm_url(p.url): i for i, (_, p, _) in enumerate(kept) if p.url}
    parent = list(range(len(kept)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (_, page, _) in enumerate(kept):
        for href in page.alternates.values():
            j = index.get(_norm_url(href))
            if j is not None:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(kept)):
        groups.setdefault(root(i), []).append(i)
    docs: list[Document] = []
    for members in groups.values():
        langs = [kept[i][2] for i in members]
        # Two pages in one language are two documents, whatever their links say.
        parts = [members] if len(set(langs)) == len(langs) else [[i] for i in members]
        for group in parts:
            ordered = sorted(
                group, key=lambda i: (kept[i][2] != "fi", kept[i][1].url or kept[i][0])
            )
            first_key, first, _ = kept[ordered[0]]
            docs.append(
                Document(
                    id=web_doc_id(_norm_url(first.url) if first.url else first_key),
                    url=first.url,
                    title={
                        kept[i][2]: kept[i][1].title or kept[i][1].url or kept[i][0]
                        for i in ordered
                    },
                    text={kept[i][2]: "\n\n".join(kept[i][1].paragraphs) for i in ordered},
                    source=urlsplit(first.url).netloc if first.url else "",
                )
            )
    return sorted(docs, key=lambda d: d.id), skipped


_LOC = re.compile(r"<loc>\s*(.*?)\s*</loc>", re.S | re.I)


def parse_sitemap(text: str) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of a sitemap or sitemap index."""
    urls = [html.unescape(u) for u in _LOC.findall(text)]
    if re.search(r"<sitemapindex\b", text, re.I):
        return [], urls
    return list(dict.fromkeys(urls)), []


# --- Reading sources ------------------------------------------------------------------------


def sniff(name: str, text: str) -> Kind:
    """What a source holds, from its content (the name only breaks ties)."""
    head = text.lstrip()[:4000].lower()
    if name.lower().split("?")[0].endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if head.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError:
            return "jsonl"  # several JSON objects, one a line
        first = data[0] if isinstance(data, list) and data else data

        def is_doc(x: object) -> bool:
            return isinstance(x, dict) and "title" in x and "text" in x and "serviceNames" not in x

        if isinstance(data, list) and is_doc(first):
            raise SourceError(f"{name}: a JSON array of documents: write one a line (JSONL)")
        return "jsonl" if is_doc(data) else "ptv"
    if re.search(r"<(urlset|sitemapindex)\b", head):
        return "sitemap"
    if head.startswith("<"):
        return "html"
    raise SourceError(f"{name}: not a knowledge-base source (JSONL, PTV JSON, HTML or sitemap)")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise SourceError(f"{path}: cannot read: {e.strerror or e}") from e


def _json(text: str, name: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        message = f"{name}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}"
        raise SourceError(message) from e


def client(timeout: float = FETCH_TIMEOUT) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT},
    )


async def _get(http: httpx.AsyncClient, url: str) -> httpx.Response:
    try:
        return await http.get(url)
    except httpx.TimeoutException as e:
        raise FetchError(f"{url}: no answer within {http.timeout.read} s") from e
    except httpx.HTTPError as e:
        raise FetchError(f"{url}: {type(e).__name__}: {e}") from e


async def fetch(http: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await _get(http, url)
    if response.status_code >= 400:
        raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
    return response


def _language_detector() -> Callable[[str], str]:
    def detect(text: str) -> str:
        from agents.language import detect_language

        return detect_language(text[:2000]).language

    return detect


async def _fetch_pages(
    http: httpx.AsyncClient, urls: Sequence[str], progress: Progress | None
) -> tuple[list[tuple[str, Page]], list[str]]:
    """Fetch and parse pages; gone ones (404, 410) and non-HTML ones are skipped, any other
    failure stops the whole ingest (a partial site must not remove the rest)."""
    limit = asyncio.Semaphore(FETCH_CONCURRENCY)
    done = 0
    skipped: list[str] = []

    async def one(url: str) -> tuple[str, Page] | None:
        nonlocal done
        async with limit:
            response = await _get(http, url)
        done += 1
        if progress is not None:
            progress("fetching pages", done, len(urls))
        if response.status_code in (404, 410):
            skipped.append(f"{url}: HTTP {response.status_code}")
            return None
        if response.status_code >= 400:
            raise FetchError(f"{url}: HTTP {response.status_code} {response.reason_phrase}")
        if "html" not in response.headers.get("content-type", "text/html"):
            skipped.append(f"{url}: not HTML ({response.headers.get('content-type')})")
            return None
        return url, parse_html(response.text, str(response.url))

    try:
        # A task group cancels the other fetches as soon as one fails.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(u)) for u in urls]
    except ExceptionGroup as eg:
        first = eg.exceptions[0]
        raise first if isinstance(first, FetchError) else eg from None
    results = [t.result() for t in tasks]
    return [r for r in results if r is not None], skipped


async def _sitemap_urls(http: httpx.AsyncClient, text: str, depth: int = 0) -> list[str]:
    pages, children = parse_sitemap(text)
    if depth < 2:
        for child in children:
            pages.extend(await _sitemap_urls(http, (await fetch(http, child)).text, depth + 1))
    return list(dict.fromkeys(pages))


async def _from_text(
    http: httpx.AsyncClient,
    origin: str,
    name: str,
    text: str,
    url: str | None,
    progress: Progress | None,
) -> Loaded:
    kind = sniff(name, text)
    if kind == "jsonl":
        return Loaded(origin, kind, parse_docs_jsonl(text, name))
    if kind == "ptv":
        docs, skipped = parse_ptv(_json(text, name), name)
        return Loaded(origin, kind, docs, skipped)
    if kind == "sitemap":
        urls = await _sitemap_urls(http, text)
        if not urls:
            raise SourceError(f"{name}: the sitemap lists no pages")
        pages, gone = await _fetch_pages(http, urls, progress)
        docs, skipped = pages_to_documents(pages, _language_detector())
        return Loaded(origin, kind, docs, gone + skipped)
    key = url or Path(name).name
    docs, skipped = pages_to_documents([(key, parse_html(text, url))], _language_detector())
    return Loaded(origin, kind, docs, skipped)


async def _load_ptv_api(
    http: httpx.AsyncClient, code: str, api: str, progress: Progress | None
) -> Loaded:
    services: list[Mapping[str, Any]] = []
    page, pages = 1, 1
    while page <= min(pages, MAX_PTV_PAGES):
        url = f"{api.rstrip('/')}/Service/list/area/Municipality/code/{code}?page={page}"
        data = _json((await fetch(http, url)).text, url)
        services.extend(ptv_services(data, url))
        if isinstance(data, dict):
            pages = int(data.get("pageCount") or 1)
        if progress is not None:
            progress("fetching PTV pages", page, pages)
        page += 1
    docs, skipped = parse_ptv(services, f"ptv:{code}")
    return Loaded(f"ptv:{code}", "ptv", docs, skipped)


def _read_local(spec: str, progress: Progress | None) -> Loaded | tuple[str, str]:
    """A folder of HTML pages as documents, or a file's (origin, text)."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder")
    origin = str(path.resolve())
    if not path.is_dir():
        return origin, _read_text(path)
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".html", ".htm")
    )
    if not files:
        raise SourceError(f"{spec}: no .html files in this folder")
    pages = []
    for n, f in enumerate(files, 1):
        pages.append((f.relative_to(path).as_posix(), parse_html(_read_text(f))))
        if progress is not None:
            progress("reading pages", n, len(files))
    docs, skipped = pages_to_documents(pages, _language_detector())
    return Loaded(origin, "html", docs, skipped)


async def load_source(
    spec: str,
    *,
    ptv_api: str = PTV_API,
    fetch_timeout: float = FETCH_TIMEOUT,
    progress: Progress | None = None,
) -> Loaded:
    """Read one source: a path (file or folder of HTML pages), an http(s) URL, or ``ptv:<code>``.

    Raises ``SourceError`` for bad input (also for a source without any documents: an empty
    answer must not empty the knowledge base) and ``FetchError`` when the network fails.
    """
    loaded = await _load(spec, ptv_api, fetch_timeout, progress)
    if not loaded.docs:
        why = f" ({len(loaded.skipped)} skipped: {loaded.skipped[0]} …)" if loaded.skipped else ""
        raise SourceError(f"{spec}: no documents found{why}; nothing changed")
    return loaded


async def _load(spec: str, ptv_api: str, fetch_timeout: float, progress: Progress | None) -> Loaded:
    async with client(fetch_timeout) as http:
        if m := _PTV_SPEC.match(spec):
            return await _load_ptv_api(http, m.group(1), ptv_api, progress)
        if spec.startswith(("http://", "https://")):
            response = await fetch(http, spec)
            return await _from_text(http, spec, spec, response.text, str(response.url), progress)
        local = _read_local(spec, progress)
        if isinstance(local, Loaded):
            return local
        origin, text = local
        return await _from_text(http, origin, spec, text, None, progress)


# --- Sync -----------------------------------------------------------------------------------


def plan_sync(
    catalogue: Mapping[str, tuple[str, str | None]], origin: str, docs: Iterable[Document]
) -> SyncPlan:
    """What a sync of ``origin`` to ``docs`` changes, given the store's (hash, origin) by id."""
    incoming = {d.id: d for d in docs}
    added, changed, unchanged = [], [], []
    for doc in incoming.values():
        known = catalogue.get(doc.id)
        if known is None:
            added.append(doc)
        elif known[0] != content_hash(doc):
            changed.append(doc)
        else:
            unchanged.append(doc.id)
    removed = sorted(
        doc_id
        for doc_id, (_, owner) in catalogue.items()
        if owner == origin and doc_id not in incoming
    )
    return SyncPlan(added, changed, unchanged, removed)


async def sync(
    store: KnowledgeStore,
    origin: str,
    docs: Sequence[Document],
    progress: Progress | None = None,
) -> SyncSummary:
    """Make the store hold exactly ``docs`` for ``origin`` (one transaction)."""
    plan = plan_sync(await store.catalogue(), origin, docs)
    put = [*plan.added, *plan.changed]

    def step(n: int) -> None:
        if progress is not None:
            progress("writing documents", n, len(put))

    step(0)
    stale = await store.apply(
        origin, put=put, keep=plan.unchanged, remove=plan.removed, progress=step
    )
    return SyncSummary(
        origin=origin,
        added=len(plan.added),
        changed=len(plan.changed),
        unchanged=len(plan.unchanged),
        removed=len(plan.removed),
        stale_vectors=stale,
    )
