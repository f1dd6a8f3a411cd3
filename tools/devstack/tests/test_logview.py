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


def test_raw_mode_is_json_lines_only() -> None:
    out = io.StringIO()
    view = LogView(out, raw=True)
    view.line("users", '{"message": "hi", "level": "INFO", "service": "users"}')
    view.line("postgres", "LOG:  database system is ready to accept connections\n")
    view.say("shopstack is up")
    view.line("nginx", '{"status": 404}')
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"message": "hi", "level": "INFO", "service": "users"}
    assert lines[1]["service"] == "postgres"
    assert lines[1]["message"] == "LOG:  database system is ready to accept connections"
    assert (lines[2]["service"], lines[2]["message"]) == ("devstack", "shopstack is up")
    assert {"time", "level", "logger"} <= set(lines[2])
    assert lines[3] == {"status": 404, "service": "nginx"}


def test_the_name_column_keeps_its_width() -> None:
    out = io.StringIO()
    view = LogView(out, names=["postgres", "migrate-orders"])
    view.line("postgres", "first")
    view.line("migrate-orders", "second")
    view.line("nginx", "third")
    assert [line.index("|") for line in out.getvalue().splitlines()] == [15, 15, 15]
