import io
import json

from shopstack_devstack.logview import LogView


def test_json_lines_become_readable() -> None:
    out = io.StringIO()
    view = LogView(out)
    record = {
        "time": "2026-11-25T10:11:12Z", "level": "INFO", "logger": "shopstack.access",
        "message": "GET /x 200", "service": "users", "request_id": "abc", "trace_id": None,
    }  # fmt: skip
    view.line("users", json.dumps(record))
    line = out.getvalue()
    assert line.startswith("users    | 10:11:12 INFO    GET /x 200")
    assert "request_id=abc" in line
    assert "trace_id" not in line  # empty fields are left out
    assert "service=" not in line  # the prefix already says it


def test_other_lines_pass_through() -> None:
    out = io.StringIO()
    view = LogView(out)
    view.line("postgres", "LOG:  database system is ready to accept connections\n")
    view.line("redis", "{not json")
    assert out.getvalue().splitlines() == [
        "postgres | LOG:  database system is ready to accept connections",
        "redis    | {not json",
    ]


def test_raw_mode_keeps_json() -> None:
    out = io.StringIO()
    LogView(out, raw=True).line("users", '{"message": "hi", "level": "INFO"}')
    assert out.getvalue() == 'users    | {"message": "hi", "level": "INFO"}\n'
