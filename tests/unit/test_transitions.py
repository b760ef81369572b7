"""The ticket lifecycle rules (``handoff.transitions``): every action from every state."""

from __future__ import annotations

import pytest

from handoff.transitions import ACTIVE, Action, Change, NotAllowed, Status, apply

OPEN, CLAIMED, WAITING, RESOLVED = (Status.OPEN, Status.CLAIMED, Status.WAITING, Status.RESOLVED)


@pytest.mark.parametrize(
    ("action", "status", "owner", "expected"),
    [
        (Action.CLAIM, OPEN, None, Change(CLAIMED, "anna")),
        (
            Action.CLAIM,
            WAITING,
            "ville",
            Change(CLAIMED, "anna"),
        ),  # a waiting ticket is free to take
        (Action.REPLY, OPEN, None, Change(WAITING, "anna")),  # replying claims on the way
        (Action.REPLY, CLAIMED, "anna", Change(WAITING, "anna")),
        (Action.REPLY, WAITING, "anna", Change(WAITING, "anna")),
        (Action.NOTE, RESOLVED, "ville", Change(RESOLVED, "ville")),  # notes fit every state
        (Action.NOTE, CLAIMED, "ville", Change(CLAIMED, "ville")),
        (Action.TRANSFER, CLAIMED, "anna", Change(OPEN, None)),
        (Action.TRANSFER, WAITING, "ville", Change(OPEN, None)),
        (Action.RESOLVE, OPEN, None, Change(RESOLVED, None)),
        (Action.RESOLVE, WAITING, "anna", Change(RESOLVED, "anna")),
        (Action.REOPEN, RESOLVED, "anna", Change(OPEN, "anna")),
        (Action.RESIDENT_MESSAGE, WAITING, "anna", Change(OPEN, "anna")),
        (Action.RESIDENT_MESSAGE, CLAIMED, "anna", Change(CLAIMED, "anna")),
        (Action.RESIDENT_MESSAGE, OPEN, None, Change(OPEN, None)),
        # The router's store reopens a resolved case only if resolved recently.
        (Action.RESIDENT_MESSAGE, RESOLVED, "anna", Change(OPEN, "anna")),
    ],
)
def test_allowed_changes(
    action: Action, status: Status, owner: str | None, expected: Change
) -> None:
    assert apply(action, status, owner, "anna") == expected


@pytest.mark.parametrize(
    ("action", "status", "owner", "reason"),
    [
        (Action.CLAIM, CLAIMED, "anna", "You have already claimed this ticket."),
        (Action.CLAIM, CLAIMED, "ville", "ville has claimed this ticket."),
        (
            Action.REPLY,
            CLAIMED,
            "ville",
            "ville has claimed this ticket; only they can do that now.",
        ),
        (
            Action.TRANSFER,
            CLAIMED,
            "ville",
            "ville has claimed this ticket; only they can do that now.",
        ),
        (
            Action.RESOLVE,
            CLAIMED,
            "ville",
            "ville has claimed this ticket; only they can do that now.",
        ),
        (Action.RESOLVE, RESOLVED, None, "The ticket is already resolved."),
        (Action.REPLY, RESOLVED, None, "The ticket is resolved; reopen it first."),
        (Action.CLAIM, RESOLVED, None, "The ticket is resolved; reopen it first."),
        (Action.TRANSFER, RESOLVED, None, "The ticket is resolved; reopen it first."),
        (Action.REOPEN, OPEN, None, "Only a resolved ticket can be reopened."),
        (Action.REOPEN, WAITING, "anna", "Only a resolved ticket can be reopened."),
    ],
)
def test_refused_changes_say_why(
    action: Action, status: Status, owner: str | None, reason: str
) -> None:
    with pytest.raises(NotAllowed) as refused:
        apply(action, status, owner, "anna")
    assert refused.value.reason == reason


def test_an_admin_may_take_a_claimed_ticket_over_but_not_reply_past_the_claim() -> None:
    assert apply(Action.CLAIM, CLAIMED, "ville", "boss", admin=True) == Change(CLAIMED, "boss")
    with pytest.raises(NotAllowed):
        apply(Action.REPLY, CLAIMED, "ville", "boss", admin=True)


def test_the_router_adds_messages_to_the_same_tickets_the_console_calls_active() -> None:
    # router.store keeps its own literal (the router does not import handoff); they must agree.
    from router.store import OPEN_TICKET_STATUSES

    assert set(OPEN_TICKET_STATUSES) == set(ACTIVE)
