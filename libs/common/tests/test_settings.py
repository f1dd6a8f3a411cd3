import pytest
from pydantic import ValidationError

from shopstack_common.settings import DatabaseServiceSettings, sqlalchemy_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_sqlalchemy_url_names_the_driver(url: str, expected: str) -> None:
    assert sqlalchemy_url(url, "asyncpg") == expected


@pytest.mark.parametrize("url", ["mysql://u@h/d", "nonsense"])
def test_sqlalchemy_url_rejects_other_databases(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        sqlalchemy_url(url, "asyncpg")


def test_settings_need_their_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ValidationError) as raised:
        DatabaseServiceSettings(service_name="x")  # type: ignore[call-arg]
    assert {e["loc"][0] for e in raised.value.errors()} == {"DATABASE_URL", "REDIS_URL"}


def test_settings_reject_a_wrong_scheme() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        DatabaseServiceSettings(service_name="x", database_url="mysql://x", redis_url="redis://x")


def test_shared_names_are_read_without_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("METRICS_PORT", "9101")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    settings = DatabaseServiceSettings(service_name="x")
    assert (settings.port, settings.metrics_port, settings.web_concurrency) == (9001, 9101, 3)
    assert settings.redis_url == "redis://cache:6379/0"


@pytest.mark.parametrize(("environment", "allowed"), [("production", False), ("development", True)])
def test_trusting_every_proxy_is_for_development_only(environment: str, allowed: bool) -> None:
    def make() -> DatabaseServiceSettings:
        return DatabaseServiceSettings(
            service_name="x",
            database_url="postgresql://db/x",
            redis_url="redis://r",
            environment=environment,  # type: ignore[arg-type]
            forwarded_allow_ips="*",
        )

    if allowed:
        assert make().forwarded_allow_ips == "*"
    else:
        with pytest.raises(ValidationError, match="FORWARDED_ALLOW_IPS"):
            make()


def test_metrics_need_a_port_of_their_own() -> None:
    with pytest.raises(ValidationError, match="METRICS_PORT"):
        DatabaseServiceSettings(
            service_name="x",
            database_url="postgresql://db/x",
            redis_url="redis://r",
            port=9000,
            metrics_port=9000,
        )
