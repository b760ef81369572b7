"""Accessibility checks in the browser with axe-core (installed from npm by ``make test``)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, cast

from playwright.sync_api import Page

from tests.conftest import missing
from tests.e2e.conftest import REPO

AXE_JS = REPO / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


@cache
def _axe_source() -> str:
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page: Page, *, tags: Sequence[str] = WCAG_21_AA) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; the rules with the given tags only."""
    if not AXE_JS.exists():
        missing("axe-core (make test installs it)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(content=_axe_source())
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations;
        }""",
        list(tags),
    )
    return cast(list[dict[str, Any]], result)


def format_violations(violations: list[dict[str, Any]]) -> str:
    """One readable block per rule, with the offending elements, for assertion messages."""
    lines: list[str] = []
    for v in violations:
        lines.append(f"{v['id']} ({v.get('impact')}): {v['help']} — {v.get('helpUrl', '')}")
        for node in v.get("nodes", [])[:10]:
            target = " ".join(str(t) for t in node.get("target", []))
            lines.append(f"    at {target}")
            summary = str(node.get("failureSummary") or "").strip()
            if summary:
                lines.extend("        " + s for s in summary.splitlines())
    return "\n".join(lines) or "no violations"


def assert_no_violations(page: Page, context: str = "") -> None:
    violations = axe_violations(page)
    where = f" ({context})" if context else ""
    assert not violations, f"axe found WCAG 2.1 AA violations{where}:\n" + format_violations(
        violations
    )
