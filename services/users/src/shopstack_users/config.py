"""The users service's one settings class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from shopstack_common.settings import DatabaseServiceSettings, shared


def _split(value: Any) -> Any:
    """Space- or comma-separated strings from the environment; lists pass through."""
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return value


class UsersSettings(DatabaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    service_name: str = "users"
    port: int = shared("PORT", 8001, ge=1, le=65535)
    web_concurrency: int = shared("WEB_CONCURRENCY", 2, ge=1, le=64)
    # gunicorn's gthread workers: requests each worker serves at once.
    web_threads: int = shared("WEB_THREADS", 4, ge=1, le=64)
    db_schema: str = "users"
    db_pool_size: int = 5
    # SQLAlchemy's own default, named so the pool's limit gauge reads it.
    db_max_overflow: int = 10
    db_pool_timeout_seconds: float = 5.0
    db_connect_timeout_seconds: int = 3
    db_statement_timeout_ms: int = 5000
    redis_timeout_seconds: float = 0.25
    max_content_length: int = 64 * 1024

    # -- tokens ---------------------------------------------------------------------------
    jwt_issuer: str = "shopstack"
    jwt_audience: str = "shopstack-api"
    # A directory of Ed25519 private keys, one `<kid>.pem` each, and/or a JSON object
    # {"<kid>": "<PEM>"} (for a Kubernetes secret mapped to one variable). All keys are
    # published in the JWKS; the kid that sorts last signs, so date-like kids
    # (2026-11-25) make the newest key the signing one.
    jwt_signing_keys_dir: Path | None = None
    jwt_signing_keys: SecretStr | None = None
    # How often the directory is looked at for added, changed or removed key files (a
    # listing and a stat per file; the keys are read again only when those changed).
    # 0 looks at every use.
    jwt_signing_keys_reload_seconds: float = Field(default=5.0, ge=0, le=3600)
    access_token_ttl_seconds: int = Field(default=15 * 60, ge=30, le=24 * 3600)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    jwks_max_age_seconds: int = Field(default=300, ge=0)
    # The client id stamped on tokens from the password and refresh grants (first-party
    # apps are public clients: they cannot keep a secret).
    public_client_id: str = "shopstack-web"
    # Scopes a user's token may carry; a password grant without `scope` gets all of them.
    user_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["profile", "orders"]
    )

    # -- passwords (argon2id; OWASP: m=19 MiB, t=2, p=1) ------------------------------------
    argon2_memory_cost_kib: int = Field(default=19 * 1024, ge=8 * 1024)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)

    # -- login throttling ---------------------------------------------------------------
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # The client address (the login throttle's key) is the entry this many places from the
    # right of X-Forwarded-For. The gateway hands on the chain with the address it resolved
    # itself as the last entry (after trusting NGINX's entry through its own
    # FORWARDED_ALLOW_IPS), so 1 means "the address the gateway rate-limits by". Entries
    # further left are whatever the client claimed. 0 trusts no header and uses the peer.
    # Whoever reaches the service directly can claim any address: only the network in front
    # of it (a NetworkPolicy admitting the gateway alone) makes the header trustworthy.
    trusted_proxy_hops: int = Field(default=1, ge=0, le=10)

    # -- cache ----------------------------------------------------------------------------
    user_cache_ttl_seconds: int = Field(default=300, ge=1)
    # A dependency failing on every request is logged at most once per this many seconds.
    fallback_log_quiet_seconds: float = 60.0

    # -- first admin (idempotent bootstrap when both are set) ---------------------------
    admin_email: str | None = Field(
        default=None, validation_alias=AliasChoices("SHOPSTACK_ADMIN_EMAIL", "admin_email")
    )
    admin_password: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SHOPSTACK_ADMIN_PASSWORD", "admin_password"),
    )

    # -- admin console (/admin) -------------------------------------------------------------
    # Signs the console's session cookie and CSRF tokens; every replica needs the same one.
    # Outside development and test the console is off until it is set.
    console_secret_key: SecretStr | None = None
    # A console session ends after this long without a request, and this long after sign-in
    # whatever happens.
    console_idle_timeout_seconds: int = Field(default=30 * 60, ge=60, le=24 * 3600)
    console_absolute_timeout_seconds: int = Field(default=8 * 3600, ge=300, le=7 * 24 * 3600)
    # The orders API as a bearer of an access token reaches it (the gateway's address), and
    # the service client whose client-credentials token the console uses there. With no URL
    # or no secret a user's page says its orders cannot be shown.
    console_orders_api_url: str | None = None
    console_orders_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    console_client_id: str = "users-console"
    console_client_secret: SecretStr | None = None

    @field_validator("user_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("jwt_signing_keys")
    @classmethod
    def _keys_are_a_json_object(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        try:
            parsed = json.loads(value.get_secret_value())
        except ValueError as error:
            raise ValueError("JWT_SIGNING_KEYS must be a JSON object {kid: PEM}") from error
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise ValueError("JWT_SIGNING_KEYS must be a JSON object {kid: PEM}")
        return value

    @model_validator(mode="after")
    def _console_timeouts_nest(self) -> Self:
        if self.console_idle_timeout_seconds > self.console_absolute_timeout_seconds:
            raise ValueError(
                "CONSOLE_IDLE_TIMEOUT_SECONDS must not exceed CONSOLE_ABSOLUTE_TIMEOUT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _admin_needs_both(self) -> Self:
        if (self.admin_email is None) != (self.admin_password is None):
            raise ValueError(
                "set both SHOPSTACK_ADMIN_EMAIL and SHOPSTACK_ADMIN_PASSWORD, or neither"
            )
        return self
