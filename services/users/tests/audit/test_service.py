"""The audit trail's own functions: recorded with the change, listed newest first in pages."""

from __future__ import annotations

import pytest
from flask import Flask

from shopstack_common.problems import ProblemError
from shopstack_users.audit import service as audit
from shopstack_users.resources import resources

ACTOR = audit.Actor(label="root@example.com", address="192.0.2.1")


def record(app: Flask, n: int, *, fail: bool = False) -> None:
    with resources(app).sessions.begin() as session:
        target = audit.Target(type="client", id=f"client-{n}", label=f"client-{n}")
        audit.record(session, ACTOR, "client.deleted", target)
        if fail:
            raise RuntimeError("the change failed")


def test_an_event_commits_with_its_change_or_not_at_all(users_app: Flask) -> None:
    record(users_app, 1)
    with pytest.raises(RuntimeError):
        record(users_app, 2, fail=True)
    events, _ = audit.list_events(
        sessions=resources(users_app).sessions, limit=10, where=audit.AuditFilter()
    )
    assert [e.target_id for e in events] == ["client-1"]


def test_events_page_newest_first(users_app: Flask) -> None:
    for n in range(5):
        record(users_app, n)
    sessions = resources(users_app).sessions
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = audit.list_events(
            sessions=sessions, limit=2, where=audit.AuditFilter(), cursor=cursor
        )
        seen += [e.target_id for e in page]
        if cursor is None:
            break
        record(users_app, 99)  # newer than every page: must not shift the next one
    assert seen == [f"client-{n}" for n in reversed(range(5))]


@pytest.mark.parametrize("cursor", ["abc", "-1", "9" * 20])
def test_a_cursor_the_list_did_not_issue_is_refused(users_app: Flask, cursor: str) -> None:
    with pytest.raises(ProblemError) as refused:
        audit.list_events(
            sessions=resources(users_app).sessions,
            limit=2,
            where=audit.AuditFilter(),
            cursor=cursor,
        )
    assert refused.value.errors == [
        {"field": "cursor", "location": "query", "message": "Not a valid cursor."}
    ]


def test_an_unknown_action_is_a_programming_error(users_app: Flask) -> None:
    with (
        resources(users_app).sessions.begin() as session,
        pytest.raises(ValueError, match="unknown audit action"),
    ):
        audit.record(session, ACTOR, "user.teleported", audit.Target("user", "x", "x"))
