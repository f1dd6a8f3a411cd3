"""HTTP routes of the accounts area: registration and the caller's own profile (``accounts``),
and user administration (``user_admin``). Who may call what is declared with ``authz``; the
service functions own the unit of work and raise the problems these routes answer with."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request

from shopstack_common.problems import (
    AUTHENTICATION_REQUIRED,
    BODY_TOO_LARGE,
    DATABASE_UNAVAILABLE,
    EMAIL_TAKEN,
    FORBIDDEN,
    INVALID_CURSOR,
    LAST_ADMIN,
    MALFORMED_REQUEST,
    NOT_FOUND,
    TOO_MANY_FAILED_LOGINS,
    USER_REQUIRED,
    VALIDATION,
    ProblemError,
)
from shopstack_users import authz
from shopstack_users.accounts import service
from shopstack_users.accounts.models import User
from shopstack_users.accounts.schemas import (
    AdminUserUpdateSchema,
    ListUsersQuerySchema,
    MeUpdateSchema,
    RegisterSchema,
    RolesSchema,
    UserAdminSchema,
    UserPageSchema,
    UserPublicSchema,
)
from shopstack_users.audit import service as audit
from shopstack_users.authz import Action, Permission
from shopstack_users.blueprint import Blueprint
from shopstack_users.metrics import REGISTRATIONS
from shopstack_users.openapi import BEARER, problem_responses
from shopstack_users.resources import resources

accounts = Blueprint(
    "accounts", __name__, url_prefix="/api/v1", description="Registration and own profile"
)
user_admin = Blueprint(
    "user_admin", __name__, url_prefix="/api/v1/users", description="User administration"
)

# What any route with a JSON body can answer besides its own problems.
BODY_PROBLEMS = (MALFORMED_REQUEST, BODY_TOO_LARGE, VALIDATION, DATABASE_UNAVAILABLE)
USER_ID = {"path.user_id": "$response.body#/id"}


def _actor() -> audit.Actor:
    """The caller of an admin route, for the audit trail: a user by email, or a client."""
    identity = authz.current_identity()
    email = None
    if identity.user_id is not None:
        found = resources()
        try:
            email = service.get_user_view(
                sessions=found.sessions,
                redis_cache=found.redis,
                user_id=identity.user_id,
                ttl_seconds=found.settings.user_cache_ttl_seconds,
            ).email
        except ProblemError:
            email = None  # the caller's own account is gone; the id says who it was
    return audit.Actor.of_identity(identity, email=email, address=request.remote_addr)


@accounts.post("/auth/register")
@accounts.arguments(RegisterSchema)
@accounts.response(201, UserPublicSchema, description="The new account")
@accounts.doc(
    operationId="register",
    responses={
        **problem_responses(EMAIL_TAKEN, *BODY_PROBLEMS),
        "201": {
            "links": {
                "signIn": {
                    "operationId": "issueToken",
                    "description": "Sign in with the password just registered.",
                    "requestBody": {
                        "grant_type": "password",
                        "username": "$request.body#/email",
                        "password": "$request.body#/password",
                    },
                },
                "getUser": {"operationId": "getUser", "parameters": USER_ID},
            }
        },
    },
)
def register(payload: dict[str, Any]) -> User:
    """Create a customer account"""
    found = resources()
    user = service.register_user(sessions=found.sessions, passwords=found.passwords, **payload)
    REGISTRATIONS.inc()
    return user


@accounts.get("/users/me")
@authz.require_user()
@accounts.response(200, UserPublicSchema)
@accounts.doc(
    operationId="getMe",
    security=BEARER,
    responses=problem_responses(
        AUTHENTICATION_REQUIRED, USER_REQUIRED, NOT_FOUND, DATABASE_UNAVAILABLE
    ),
)
def get_me() -> service.UserView:
    """Read your own profile"""
    found = resources()
    return service.get_user_view(
        sessions=found.sessions,
        redis_cache=found.redis,
        user_id=authz.current_user_id(),
        ttl_seconds=found.settings.user_cache_ttl_seconds,
    )


@accounts.patch("/users/me")
@authz.require_user()
@accounts.arguments(MeUpdateSchema)
@accounts.response(200, UserPublicSchema)
@accounts.doc(
    operationId="updateMe",
    security=BEARER,
    responses=problem_responses(
        AUTHENTICATION_REQUIRED,
        USER_REQUIRED,
        NOT_FOUND,
        TOO_MANY_FAILED_LOGINS,
        *BODY_PROBLEMS,
    ),
)
def update_me(changes: dict[str, Any]) -> User:
    """Change your name or password

    A new password needs the current one (checked under the login throttle), must pass the
    password policy, and ends every session of the account (its refresh tokens)."""
    found = resources()
    return service.update_profile(
        sessions=found.sessions,
        redis_cache=found.redis,
        throttle=found.login_throttle,
        user_id=authz.current_user_id(),
        client_address=request.remote_addr or "unknown",
        **changes,
    )


@user_admin.get("")
@authz.require(Permission.READ_USERS)
@user_admin.arguments(ListUsersQuerySchema, location="query")
@user_admin.response(200, UserPageSchema)
@user_admin.doc(
    operationId="listUsers",
    security=BEARER,
    responses={
        **problem_responses(
            AUTHENTICATION_REQUIRED, FORBIDDEN, VALIDATION, INVALID_CURSOR, DATABASE_UNAVAILABLE
        ),
        "200": {
            "links": {
                "nextPage": {
                    "operationId": "listUsers",
                    "parameters": {"query.cursor": "$response.body#/next_cursor"},
                },
                "getFirstUser": {
                    "operationId": "getUser",
                    "parameters": {"path.user_id": "$response.body#/items/0/id"},
                },
            }
        },
    },
)
def list_users(query: dict[str, Any]) -> dict[str, Any]:
    """List users (admin)

    Keyset pagination in creation order: pass `next_cursor` as `cursor` for the next page."""
    users, next_cursor = service.list_users(sessions=resources().sessions, **query)
    return {"items": users, "next_cursor": next_cursor}


@user_admin.get("/<uuid:user_id>")
@authz.require_user_access(Action.READ)
@user_admin.response(200, UserAdminSchema)
@user_admin.doc(
    operationId="getUser",
    security=BEARER,
    responses={
        **problem_responses(AUTHENTICATION_REQUIRED, NOT_FOUND, DATABASE_UNAVAILABLE),
        "200": {
            "links": {
                "updateUser": {"operationId": "updateUser", "parameters": USER_ID},
                "setRoles": {"operationId": "setRoles", "parameters": USER_ID},
                "deleteUser": {"operationId": "deleteUser", "parameters": USER_ID},
            }
        },
    },
)
def get_user(user_id: uuid.UUID) -> service.UserView:
    """Read a user (that user, or admin)

    Someone who may not read the user gets 404, as for an id that does not exist."""
    found = resources()
    return service.get_user_view(
        sessions=found.sessions,
        redis_cache=found.redis,
        user_id=user_id,
        ttl_seconds=found.settings.user_cache_ttl_seconds,
    )


@user_admin.patch("/<uuid:user_id>")
@authz.require_user_access(Action.WRITE)
@user_admin.arguments(AdminUserUpdateSchema)
@user_admin.response(200, UserAdminSchema)
@user_admin.doc(
    operationId="updateUser",
    security=BEARER,
    responses=problem_responses(
        AUTHENTICATION_REQUIRED, FORBIDDEN, NOT_FOUND, EMAIL_TAKEN, LAST_ADMIN, *BODY_PROBLEMS
    ),
)
def update_user(changes: dict[str, Any], user_id: uuid.UUID) -> User:
    """Change a user's email, name or active flag (admin)

    Deactivating revokes the user's refresh tokens; the last active admin stays active."""
    found = resources()
    return service.update_user(
        sessions=found.sessions,
        redis_cache=found.redis,
        actor=_actor(),
        user_id=user_id,
        **changes,
    )


@user_admin.delete("/<uuid:user_id>")
@authz.require_user_access(Action.WRITE)
@user_admin.response(204, description="Deleted, with the user's refresh tokens")
@user_admin.doc(
    operationId="deleteUser",
    security=BEARER,
    responses=problem_responses(
        AUTHENTICATION_REQUIRED, FORBIDDEN, NOT_FOUND, LAST_ADMIN, DATABASE_UNAVAILABLE
    ),
)
def delete_user(user_id: uuid.UUID) -> None:
    """Delete a user (admin)"""
    found = resources()
    service.delete_user(
        sessions=found.sessions, redis_cache=found.redis, actor=_actor(), user_id=user_id
    )


@user_admin.put("/<uuid:user_id>/roles")
@authz.require_user_access(Action.WRITE)
@user_admin.arguments(RolesSchema)
@user_admin.response(200, UserAdminSchema)
@user_admin.doc(
    operationId="setRoles",
    security=BEARER,
    responses=problem_responses(
        AUTHENTICATION_REQUIRED, FORBIDDEN, NOT_FOUND, LAST_ADMIN, *BODY_PROBLEMS
    ),
)
def set_roles(payload: dict[str, Any], user_id: uuid.UUID) -> User:
    """Set a user's roles (admin)

    The last active admin keeps the admin role."""
    found = resources()
    return service.set_roles(
        sessions=found.sessions,
        redis_cache=found.redis,
        actor=_actor(),
        user_id=user_id,
        roles=payload["roles"],
    )
