"""HTTP routes of user administration. Who may call them is declared with ``authz``:
reading a user is for that user or an admin, everything else for admins."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from shopstack_users import authz
from shopstack_users.accounts import service
from shopstack_users.accounts.routes import BEARER, email_taken, no_such_user
from shopstack_users.accounts.schemas import (
    AdminUserUpdateSchema,
    ListUsersQuerySchema,
    RolesSchema,
    UserAdminSchema,
    UserPageSchema,
)
from shopstack_users.authz import Action, Permission
from shopstack_users.errors import ProblemError
from shopstack_users.extensions import cache, db, settings
from shopstack_users.models import User

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User administration")


def last_admin() -> ProblemError:
    return ProblemError(
        409,
        slug="last-admin",
        detail="This would leave the platform without an active admin.",
    )


@blp.get("")
@blp.doc(security=BEARER)
@authz.require(Permission.READ_USERS)
@blp.arguments(ListUsersQuerySchema, location="query")
@blp.response(200, UserPageSchema)
def list_users(query: dict[str, Any]) -> dict[str, Any]:
    try:
        users, next_cursor = service.list_users(session=db.session, **query)
    except service.InvalidCursorError:
        raise ProblemError(
            422,
            slug="validation",
            title="Invalid request",
            detail="Invalid fields: cursor",
            errors=[{"field": "cursor", "location": "query", "message": "Not a valid cursor."}],
        ) from None
    return {"items": users, "next_cursor": next_cursor}


@blp.get("/<uuid:user_id>")
@blp.doc(security=BEARER)
@authz.require_user_access(Action.READ)
@blp.response(200, UserAdminSchema)
def get_user(user_id: uuid.UUID) -> service.UserView:
    view = service.get_user_view(
        session=db.session,
        cache=cache,
        user_id=user_id,
        ttl_seconds=settings().user_cache_ttl_seconds,
    )
    if view is None:
        raise no_such_user()
    return view


@blp.patch("/<uuid:user_id>")
@blp.doc(security=BEARER)
@authz.require_user_access(Action.WRITE)
@blp.arguments(AdminUserUpdateSchema)
@blp.response(200, UserAdminSchema)
def update_user(changes: dict[str, Any], user_id: uuid.UUID) -> User:
    try:
        user = service.update_user(session=db.session, cache=cache, user_id=user_id, **changes)
    except service.EmailTakenError:
        raise email_taken() from None
    except service.LastAdminError:
        raise last_admin() from None
    if user is None:
        raise no_such_user()
    return user


@blp.delete("/<uuid:user_id>")
@blp.doc(security=BEARER)
@authz.require_user_access(Action.WRITE)
@blp.response(204)
def delete_user(user_id: uuid.UUID) -> None:
    try:
        deleted = service.delete_user(session=db.session, cache=cache, user_id=user_id)
    except service.LastAdminError:
        raise last_admin() from None
    if not deleted:
        raise no_such_user()


@blp.put("/<uuid:user_id>/roles")
@blp.doc(security=BEARER)
@authz.require_user_access(Action.WRITE)
@blp.arguments(RolesSchema)
@blp.response(200, UserAdminSchema)
def set_roles(payload: dict[str, Any], user_id: uuid.UUID) -> User:
    try:
        user = service.set_roles(
            session=db.session, cache=cache, user_id=user_id, roles=payload["roles"]
        )
    except service.LastAdminError:
        raise last_admin() from None
    if user is None:
        raise no_such_user()
    return user
