"""``channels`` and ``agents`` share names with other PyPI projects: ours must be the ones used."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["channels", "router", "agents", "handoff"])
def test_top_level_package_resolves_inside_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == REPO / name
