"""Who the caller is and what they may do: the one place permission checks live.

The caller's identity comes only from the gateway's headers (``Identity.from_headers``),
never from a request body. Anyone who reaches the service directly can send such headers
too: they are worth trusting only when nothing but the gateway can reach it, which in a
cluster is a NetworkPolicy's job. Views declare what they need with the decorators below
and never look at roles themselves.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Mapping
from enum import Enum, StrEnum
from typing import Any, ParamSpec, TypeVar, cast

from flask import g, request

from shopstack_common.context import annotate_request
from shopstack_common.identity import Identity
from shopstack_common.problems import (
    AUTHENTICATION_REQUIRED,
    FORBIDDEN,
    NOT_FOUND,
    USER_REQUIRED,
    ProblemError,
)
from shopstack_users.accounts.models import ADMIN, CUSTOMER

P = ParamSpec("P")
R = TypeVar("R")


class Permission(StrEnum):
    """Permissions beyond a user's own account. A service client holds one when its token
    carries the scope of the same name."""

    READ_USERS = "users:read"
    WRITE_USERS = "users:write"


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    CUSTOMER: frozenset(),
    ADMIN: frozenset(Permission),
}


class Action(Enum):
    READ = "read"
    WRITE = "write"


def permissions_of(identity: Identity) -> frozenset[Permission]:
    if identity.user_id is not None:
        granted: set[Permission] = set()
        for role in identity.roles:
            granted |= ROLE_PERMISSIONS.get(role, frozenset())
        return frozenset(granted)
    return frozenset(p for p in Permission if p.value in identity.scopes)


def current_identity() -> Identity:
    """The verified caller, or a 401 when the gateway vouched for nobody."""
    if "identity" not in g:
        # Werkzeug's Headers look names up case-insensitively, as from_headers needs.
        g.identity = Identity.from_headers(cast("Mapping[str, str]", request.headers))
        if g.identity is not None:
            annotate_request(user_id=g.identity.subject)
    identity: Identity | None = g.identity
    if identity is None:
        raise ProblemError(
            AUTHENTICATION_REQUIRED,
            "This route needs an access token.",
            headers={"WWW-Authenticate": 'Bearer realm="shopstack"'},
        )
    return identity


def current_user_id() -> uuid.UUID:
    """The calling user's id; a service client has no account of its own."""
    identity = current_identity()
    if identity.user_id is None:
        raise ProblemError(USER_REQUIRED, "A service client has no user account.")
    return identity.user_id


def check_user_access(identity: Identity, user_id: uuid.UUID, action: Action) -> None:
    """Reading a user needs to be that user or hold ``users:read``; changing one through the
    admin routes needs ``users:write``. Someone who may not even read the user gets a 404,
    as if it did not exist, so ids cannot be probed."""
    granted = permissions_of(identity)
    may_read = identity.user_id == user_id or Permission.READ_USERS in granted
    if not may_read:
        raise ProblemError(NOT_FOUND, "No such user.")
    if action is Action.WRITE and Permission.WRITE_USERS not in granted:
        raise ProblemError(FORBIDDEN, "Changing users needs the admin role.")


def require(permission: Permission) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The route needs an identity (401) holding ``permission`` (403)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if permission not in permissions_of(current_identity()):
                raise ProblemError(FORBIDDEN, f"This route needs the {permission} permission.")
            return view(*args, **kwargs)

        return guarded

    return decorate


def require_user_access(action: Action) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The route acts on the user named by its ``user_id`` path parameter."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            user_id: Any = kwargs["user_id"]
            check_user_access(current_identity(), user_id, action)
            return view(*args, **kwargs)

        return guarded

    return decorate


def require_user() -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The route acts on the calling user's own account."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            current_user_id()
            return view(*args, **kwargs)

        return guarded

    return decorate
