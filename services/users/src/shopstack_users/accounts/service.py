"""Account operations. Views call these; they know nothing about HTTP."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

import redis
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shopstack_common.metrics import DEPENDENCY_FALLBACKS
from shopstack_users.models import User

logger = logging.getLogger(__name__)

# OWASP's argon2id recommendation: 19 MiB of memory, 2 iterations, 1 lane.
password_hasher = PasswordHasher(memory_cost=19 * 1024, time_cost=2, parallelism=1)

CACHE_PREFIX = "users:user:"
CACHE_TTL_SECONDS = 300


class EmailTakenError(Exception):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register_user(*, session: Session, email: str, password: str, full_name: str) -> User:
    user = User(
        email=normalise_email(email),
        full_name=full_name.strip(),
        password_hash=password_hasher.hash(password),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise EmailTakenError(email) from error
    return user


@dataclass(frozen=True)
class UserView:
    """The public part of a user: what is cached and what clients see."""

    id: uuid.UUID
    email: str
    full_name: str
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            id=user.id, email=user.email, full_name=user.full_name, created_at=user.created_at
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": str(self.id),
                "email": self.email,
                "full_name": self.full_name,
                "created_at": self.created_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> UserView:
        data = json.loads(raw)
        return cls(
            id=uuid.UUID(data["id"]),
            email=data["email"],
            full_name=data["full_name"],
            created_at=datetime.fromisoformat(data["created_at"]),
        )


def get_user_public(*, session: Session, cache: redis.Redis, user_id: uuid.UUID) -> UserView | None:
    """Cache-aside read. Redis errors count as a miss: the read goes on to PostgreSQL."""
    key = f"{CACHE_PREFIX}{user_id}"
    try:
        cached = cache.get(key)
    except redis.RedisError:
        DEPENDENCY_FALLBACKS.labels("redis", "users.get").inc()
        cached = None
    if cached:
        return UserView.from_json(str(cached))
    user = session.execute(select(User).where(User.id == user_id)).scalar_one_or_none()
    if user is None:
        return None
    public = UserView.of(user)
    try:
        cache.set(key, public.to_json(), ex=CACHE_TTL_SECONDS)
    except redis.RedisError:
        DEPENDENCY_FALLBACKS.labels("redis", "users.set").inc()
    return public
