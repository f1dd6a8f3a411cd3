"""The Blueprint every router of the service uses: flask-smorest's, reading JSON bodies so
that a body it cannot read is the platform's 400 ``malformed-request``.

webargs turns invalid JSON into a bare 400, and lets the RecursionError of a body nested
thousands of levels deep through as a 500; both are a client's mistake, said as such here.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser

from shopstack_common.problems import MALFORMED_REQUEST, ProblemError


class JsonBodyParser(FlaskParser):
    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            raise ProblemError(
                MALFORMED_REQUEST, "The JSON body is nested deeper than allowed."
            ) from None

    def _handle_invalid_json_error(
        self,
        error: json.JSONDecodeError | UnicodeDecodeError,
        req: flask.Request,
        *args: Any,
        **kwargs: Any,
    ) -> NoReturn:
        raise ProblemError(MALFORMED_REQUEST, f"The body is not valid JSON: {error}.") from None


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = JsonBodyParser()
