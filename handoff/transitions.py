"""What may happen to a ticket, and what it becomes: the pure rules of the ticket lifecycle.

    open ──claim──▶ claimed ──reply──▶ waiting (for the resident) ──resident writes──▶ open
      └──────────────reply─────────────▲   any of the three ──resolve──▶ resolved ──reopen──▶ open
                                                           resolved ──resident writes──▶ open

A transfer puts a ticket in another queue as open and unclaimed; a note changes nothing but
the timeline. ``handoff.tickets`` applies these inside a database transaction, and the
router's store the resident's messages (a resolved ticket only within
``RouterStore.reopen_within`` of its resolution; later the AI answers a new case).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    WAITING = "waiting"
    RESOLVED = "resolved"


ACTIVE: tuple[Status, ...] = (Status.OPEN, Status.CLAIMED, Status.WAITING)


class Action(StrEnum):
    CLAIM = "claim"
    REPLY = "reply"
    NOTE = "note"
    TRANSFER = "transfer"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    RESIDENT_MESSAGE = "resident_message"


@dataclass(frozen=True, slots=True)
class Change:
    status: Status
    owner: str | None


class NotAllowed(Exception):
    """The action does not fit the ticket's state; ``reason`` says why, for the person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _claimed_by_other(status: Status, owner: str | None, actor: str) -> bool:
    return status is Status.CLAIMED and owner is not None and owner != actor


def apply(
    action: Action, status: Status, owner: str | None, actor: str, *, admin: bool = False
) -> Change:
    """The ticket's status and owner after ``actor`` does ``action``; raises NotAllowed.

    A ticket someone has claimed is theirs: others may add notes, and an admin may claim it
    over (when its owner is away), but nobody else replies, transfers or resolves it.
    """
    if action is Action.NOTE:
        return Change(status, owner)
    if action is Action.RESIDENT_MESSAGE:
        # The resident answered, or wrote again about a resolved case: back to the list of
        # tickets waiting for a person.
        moved = status in (Status.WAITING, Status.RESOLVED)
        return Change(Status.OPEN if moved else status, owner)
    if action is Action.REOPEN:
        if status is not Status.RESOLVED:
            raise NotAllowed("Only a resolved ticket can be reopened.")
        return Change(Status.OPEN, owner)
    if status is Status.RESOLVED:
        raise NotAllowed(
            "The ticket is already resolved."
            if action is Action.RESOLVE
            else "The ticket is resolved; reopen it first."
        )
    if action is Action.CLAIM:
        if status is Status.CLAIMED and owner == actor:
            raise NotAllowed("You have already claimed this ticket.")
        if _claimed_by_other(status, owner, actor) and not admin:
            raise NotAllowed(f"{owner} has claimed this ticket.")
        return Change(Status.CLAIMED, actor)
    if _claimed_by_other(status, owner, actor):
        raise NotAllowed(f"{owner} has claimed this ticket; only they can do that now.")
    match action:
        case Action.REPLY:
            # Replying to an unclaimed ticket claims it: the replier continues the case.
            return Change(Status.WAITING, actor)
        case Action.TRANSFER:
            return Change(Status.OPEN, None)
        case Action.RESOLVE:
            return Change(Status.RESOLVED, owner)
    raise AssertionError(f"unhandled action {action}")
