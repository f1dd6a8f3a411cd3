"""HTTP routes of the accounts area: registration and the caller's own profile."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from shopstack_users import authz
from shopstack_users.accounts import service
from shopstack_users.accounts.schemas import MeUpdateSchema, RegisterSchema, UserPublicSchema
from shopstack_users.errors import ProblemError
from shopstack_users.extensions import cache, db, security, settings
from shopstack_users.models import User
from shopstack_users.throttle import LoginThrottle

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts and profiles")

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def email_taken() -> ProblemError:
    return ProblemError(
        409,
        slug="email-taken",
        title="Email already registered",
        detail="An account with this email already exists.",
        errors=[{"field": "email", "location": "body", "message": "already registered"}],
    )


def no_such_user() -> ProblemError:
    return ProblemError(404, detail="No such user.")


@blp.post("/auth/register")
@blp.arguments(RegisterSchema)
@blp.response(201, UserPublicSchema)
def register(payload: dict[str, Any]) -> User:
    try:
        return service.register_user(session=db.session, passwords=security.passwords, **payload)
    except service.EmailTakenError:
        raise email_taken() from None


@blp.get("/users/me")
@blp.doc(security=BEARER)
@authz.require_user()
@blp.response(200, UserPublicSchema)
def get_me() -> service.UserView:
    view = service.get_user_view(
        session=db.session,
        cache=cache,
        user_id=authz.current_user_id(),
        ttl_seconds=settings().user_cache_ttl_seconds,
    )
    if view is None:
        raise no_such_user()
    return view


@blp.patch("/users/me")
@blp.doc(security=BEARER)
@authz.require_user()
@blp.arguments(MeUpdateSchema)
@blp.response(200, UserPublicSchema)
def update_me(changes: dict[str, Any]) -> User:
    user_id = authz.current_user_id()
    if "password" not in changes:
        user = service.update_profile(
            session=db.session, cache=cache, passwords=security.passwords, user_id=user_id,
            **changes,
        )  # fmt: skip
    else:
        user = _change_password(user_id=user_id, changes=changes)
    if user is None:
        raise no_such_user()
    return user


def _change_password(*, user_id: Any, changes: dict[str, Any]) -> User | None:
    """A wrong current password counts as a failed login: this route must not become a way
    round the login throttle."""
    config = settings()
    throttle = LoginThrottle(config.login_max_failures, config.login_failure_window_seconds)
    account, address = str(user_id), request.remote_addr or "unknown"
    retry_after = throttle.retry_after(account, address)
    if retry_after is not None:
        raise ProblemError(
            429,
            slug="too-many-failed-logins",
            detail="Too many wrong passwords for this account from this address.",
            headers={"Retry-After": str(retry_after)},
        )
    try:
        user = service.update_profile(
            session=db.session, cache=cache, passwords=security.passwords, user_id=user_id,
            **changes,
        )  # fmt: skip
    except service.WrongPasswordError:
        throttle.failed(account, address)
        raise ProblemError(
            422,
            slug="validation",
            title="Invalid request",
            detail="Invalid fields: current_password",
            errors=[
                {"field": "current_password", "location": "body", "message": "Does not match."}
            ],
        ) from None
    except service.WeakPasswordError as error:
        raise ProblemError(
            422,
            slug="validation",
            title="Invalid request",
            detail="Invalid fields: password",
            errors=[{"field": "password", "location": "body", "message": str(error)}],
        ) from None
    throttle.succeeded(account, address)
    return user
