"""HTTP routes of the accounts area."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from shopstack_users.accounts import service
from shopstack_users.accounts.schemas import RegisterSchema, UserPublicSchema
from shopstack_users.errors import ProblemError
from shopstack_users.extensions import cache, db
from shopstack_users.models import User

blp = Blueprint("accounts", __name__, url_prefix="/api/v1", description="Accounts and profiles")


@blp.post("/auth/register")
@blp.arguments(RegisterSchema)
@blp.response(201, UserPublicSchema)
def register(payload: dict[str, Any]) -> User:
    try:
        return service.register_user(session=db.session, **payload)
    except service.EmailTakenError:
        raise ProblemError(
            409,
            slug="email-taken",
            title="Email already registered",
            detail="An account with this email already exists.",
            errors=[{"field": "email", "location": "body", "message": "already registered"}],
        ) from None


@blp.get("/users/<uuid:user_id>")
@blp.response(200, UserPublicSchema)
def get_user(user_id: uuid.UUID) -> service.UserView:
    user = service.get_user_public(session=db.session, cache=cache.client, user_id=user_id)
    if user is None:
        raise ProblemError(404, detail="No such user.")
    return user
