"""The handoff thresholds and rules as admins set them: validation, merging and the audit diff.

Pure (no I/O, no clock): ``handoff.policy_store`` keeps them in the database and the NATS KV
bucket, ``handoff.admin.api`` and ``handoff.thresholds_cli`` change them.

Admins set the part of ``router.policy.Policy`` that is a judgement call: the default
threshold, a threshold per queue (a queue without one uses the default) and the queues where
people always answer. The rest (departments → queues, the routing floor, …) stays as
configured; ``Thresholds.apply`` lays the admin part over that base. A threshold is the
minimum confidence for an automatic answer: 1.0 means the AI never answers on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from router.policy import Policy

MAX_NOTE_CHARS = 1000
MAX_BY_CHARS = 64


class Thresholds(BaseModel):
    """The admin-set part of the policy. Values are as given: ``problems`` checks them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: float
    queues: dict[str, float] = Field(default_factory=dict)
    always_handoff: tuple[str, ...] = ()

    @classmethod
    def of(cls, policy: Policy) -> Thresholds:
        return cls(
            default=policy.default_threshold,
            queues=dict(policy.queue_thresholds),
            always_handoff=tuple(policy.always_handoff_queues),
        ).normalized()

    def normalized(self) -> Thresholds:
        """Queues in name order, each always-handoff queue once (equal settings compare equal)."""
        return Thresholds(
            default=self.default,
            queues=dict(sorted(self.queues.items())),
            always_handoff=tuple(sorted(set(self.always_handoff))),
        )

    def apply(self, base: Policy, version: int) -> Policy:
        """``base`` with these thresholds and rules, as policy ``version``."""
        return Policy.model_validate(
            {
                **base.model_dump(),
                "version": version,
                "default_threshold": self.default,
                "queue_thresholds": dict(self.queues),
                "always_handoff_queues": frozenset(self.always_handoff),
            }
        )

    def as_json(self) -> dict[str, Any]:
        n = self.normalized()
        return {"default": n.default, "queues": n.queues, "always_handoff": list(n.always_handoff)}


class ThresholdState(BaseModel):
    """The current thresholds with their version: what the API shows and the KV entry holds.

    Version 0 is the configured default (``NEUVONTA_DEFAULT_THRESHOLD``), before any change.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = Field(ge=0)
    default: float
    queues: dict[str, float] = Field(
        default_factory=dict, description="Thresholds of queues that do not use the default"
    )
    always_handoff: list[str] = Field(
        default_factory=list, description="Queues where people always answer (the AI drafts)"
    )
    changed_by: str | None = None
    changed_at: datetime | None = None

    @classmethod
    def at(
        cls,
        version: int,
        thresholds: Thresholds,
        *,
        changed_by: str | None = None,
        changed_at: datetime | None = None,
    ) -> ThresholdState:
        return cls(
            version=version,
            **thresholds.as_json(),
            changed_by=changed_by,
            changed_at=changed_at,
        )

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(
            default=self.default, queues=self.queues, always_handoff=tuple(self.always_handoff)
        ).normalized()

    def policy(self, base: Policy) -> Policy:
        return self.thresholds.apply(base, self.version)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> ThresholdState:
        return cls.model_validate_json(data)


# ---- validation ---------------------------------------------------------------------------


class Problem(BaseModel):
    """One reason a change is refused, in the shape of FastAPI's validation errors."""

    loc: list[str | int]
    msg: str
    type: Literal["threshold_range", "unknown_queue", "too_long", "required"]
    input: Any = None


class InvalidThresholds(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.msg for p in self.problems))


def _range_problem(loc: list[str | int], label: str, value: float) -> Problem | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and 0.0 <= value <= 1.0:
        return None
    return Problem(
        loc=loc,
        msg=(
            f"{label}: a threshold is a number from 0 to 1 (1: the AI never answers on its "
            f"own); got {value!r}"
        ),
        type="threshold_range",
        input=value if isinstance(value, int | float) and math.isfinite(value) else str(value),
    )


def _unknown_queue(loc: list[str | int], name: str, known: Sequence[str]) -> Problem:
    return Problem(
        loc=loc,
        msg=f"unknown queue {name!r}; the queues are: {', '.join(known)}",
        type="unknown_queue",
        input=name,
    )


def problems(thresholds: Thresholds, known_queues: Sequence[str]) -> list[Problem]:
    """Everything wrong with ``thresholds`` (an empty list: fine)."""
    found: list[Problem] = []
    if p := _range_problem(["body", "default"], "default", thresholds.default):
        found.append(p)
    for queue, value in thresholds.queues.items():
        if queue not in known_queues:
            found.append(_unknown_queue(["body", "queues", queue], queue, known_queues))
        elif p := _range_problem(["body", "queues", queue], queue, value):
            found.append(p)
    for i, queue in enumerate(thresholds.always_handoff):
        if queue not in known_queues:
            found.append(_unknown_queue(["body", "always_handoff", i], queue, known_queues))
    return found


def note_problem(note: str | None) -> Problem | None:
    if note is not None and len(note) > MAX_NOTE_CHARS:
        return Problem(
            loc=["body", "note"],
            msg=f"note: at most {MAX_NOTE_CHARS} characters",
            type="too_long",
            input=len(note),
        )
    return None


def by_problem(by: str) -> Problem | None:
    if not by.strip():
        return Problem(loc=["by"], msg="who makes the change is required", type="required")
    if len(by) > MAX_BY_CHARS:
        return Problem(
            loc=["by"], msg=f"by: at most {MAX_BY_CHARS} characters", type="too_long", input=by
        )
    return None


def checked(thresholds: Thresholds, known_queues: Sequence[str]) -> Thresholds:
    """``thresholds`` normalized, or ``InvalidThresholds`` listing every problem."""
    if found := problems(thresholds, known_queues):
        raise InvalidThresholds(found)
    return thresholds.normalized()


# ---- merging (the CLI changes a few values of the current setting) --------------------------


def merge(
    current: Thresholds,
    *,
    default: float | None = None,
    queues: Mapping[str, float] | None = None,
    clear_queues: Iterable[str] = (),
    always_handoff: Iterable[str] = (),
    no_always_handoff: Iterable[str] = (),
) -> Thresholds:
    """``current`` with these changes; ``clear_queues``: back to the default threshold."""
    new_queues = dict(current.queues)
    for q in clear_queues:
        new_queues.pop(q, None)
    new_queues.update(queues or {})
    handoff = set(current.always_handoff)
    handoff.update(always_handoff)
    handoff.difference_update(no_always_handoff)
    return Thresholds(
        default=current.default if default is None else default,
        queues=new_queues,
        always_handoff=tuple(handoff),
    ).normalized()


def unknown_names(names: Iterable[str], known_queues: Sequence[str]) -> list[Problem]:
    """Problems for queue names (e.g. ones to clear) that are not queues."""
    return [_unknown_queue(["queue"], n, known_queues) for n in names if n not in known_queues]


# ---- the audit diff -------------------------------------------------------------------------


class Difference(BaseModel):
    """One changed value. For a queue's threshold ``None`` means "uses the default"."""

    model_config = ConfigDict(frozen=True)

    what: Literal["default", "queue", "always_handoff"]
    queue: str | None = None
    old: float | bool | None
    new: float | bool | None

    def describe(self) -> str:
        if self.what == "default":
            return f"default: {_num(self.old)} → {_num(self.new)}"
        if self.what == "queue":
            return f"{self.queue}: {_num(self.old)} → {_num(self.new)}"
        return f"{self.queue}: always to a person {'on' if self.new else 'off'}"


def _num(value: float | bool | None) -> str:
    return "default" if value is None else f"{float(value):g}"


def diff(old: Thresholds, new: Thresholds) -> list[Difference]:
    """What changed from ``old`` to ``new``: the default, then queues by name, then rules."""
    changes: list[Difference] = []
    if old.default != new.default:
        changes.append(Difference(what="default", old=old.default, new=new.default))
    for queue in sorted(set(old.queues) | set(new.queues)):
        before, after = old.queues.get(queue), new.queues.get(queue)
        if before != after:
            changes.append(Difference(what="queue", queue=queue, old=before, new=after))
    before_rules, after_rules = set(old.always_handoff), set(new.always_handoff)
    for queue in sorted(before_rules ^ after_rules):
        changes.append(
            Difference(
                what="always_handoff",
                queue=queue,
                old=queue in before_rules,
                new=queue in after_rules,
            )
        )
    return changes


def describe(changes: Sequence[Difference]) -> str:
    return "; ".join(c.describe() for c in changes) or "no change"
