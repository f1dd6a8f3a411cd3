import pytest
from pydantic import ValidationError

from shopstack_common.settings import ServiceSettings, sqlalchemy_url


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
        ServiceSettings()  # type: ignore[call-arg]
    assert {e["loc"][0] for e in raised.value.errors()} == {"database_url", "redis_url"}


def test_settings_reject_a_wrong_scheme() -> None:
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        ServiceSettings(database_url="mysql://x", redis_url="redis://x")
