import json
import logging

import pytest

from shopstack_common.context import RequestContext, request_context_var
from shopstack_common.logs import ContextFilter, json_formatter


def test_log_lines_are_json_with_request_context(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("test.logs")
    handler = logging.StreamHandler()
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter("users"))
    logger.addHandler(handler)
    logger.propagate = False
    token = request_context_var.set(RequestContext(request_id="r-1", fields={"user_id": "u-1"}))
    try:
        logger.warning("hello %s", "world", extra={"order_id": 7})
    finally:
        request_context_var.reset(token)
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip())
    assert line["message"] == "hello world"
    assert line["level"] == "WARNING"
    assert line["service"] == "users"
    assert line["request_id"] == "r-1"
    assert line["user_id"] == "u-1"
    assert line["order_id"] == 7
    assert line["time"].endswith("Z")
