"""Hostile inputs for every field an OpenAPI document declares, and the one rule for the
answers: a bad value is a 4xx problem+json that names its field, never a 500.

Read from the document a service serves, so a field added tomorrow is fuzzed tomorrow. Each
``Case`` is one field of one operation (a path or query parameter, a body property at any
depth, a form field) with one kind of hostile value that fits its type: NUL characters, lone
surrogates, right-to-left marks, strings of a megabyte (as long as a URL allows, in one) and
nesting thousands deep for every field; huge, negative, fractional, NaN and boolean values
for numbers; the extremes of the calendar for date-times. ``values`` are hypothesis
strategies, ``canonical`` one value of each kind, so a sweep can send every case once and
hypothesis look further.

Requests are described, not sent: ``Request`` holds the method, the URL with its query
string already encoded (a lone surrogate goes as the bytes UTF-8 cannot hold) and the raw
body, so one description drives a WSGI or an ASGI test client alike. ``judge`` says what is
wrong with an answer, or nothing.

Headers are left out: HTTP clients refuse NUL and line breaks in them before a service
could see one, and their length is NGINX's and the gateway's limit.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shopstack_common.problems import PROBLEM_CONTENT_TYPE, STATE_DEPENDENT

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
METHODS = ("get", "post", "put", "patch", "delete")
DEPTH = 2_500  # deeper than any parser's recursion limit (Python's is 1,000)
MEGABYTE = 1_000_000
# The OAuth endpoints answer RFC 6749 errors ({"error": ...}), the platform's one documented
# exception to problem+json; revocation answers 200 for a token it does not know (RFC 7009).
OAUTH_PATHS = frozenset({"/api/v1/auth/token", "/api/v1/auth/revoke"})
REVOCATION_PATH = "/api/v1/auth/revoke"

RTL_MARKS = ("\u200f", "\u202e", "\u2067", "\u061c", "\u202b")
LONE_SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff")
DATE_EXTREMES = (
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
    "0001-01-01T00:00:00+14:00",  # year 0 in UTC
    "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-12-31T23:59:60Z",
    "2026-01-01T00:00:00+24:00",
)


class NotJson:
    """A number JSON cannot carry (NaN, Infinity): written as the bare token Python's json
    writes for it, which a strict parser refuses."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"NotJson({self.value!r})"


class Nested:
    """A value nested ``depth`` levels deep, written out without recursion."""

    def __init__(self, depth: int, brackets: str) -> None:
        self.depth = depth
        self.brackets = brackets

    def text(self) -> str:
        return self.brackets[0] * self.depth + self.brackets[1] * self.depth

    def __repr__(self) -> str:
        return f"Nested({self.depth}, {self.brackets!r})"


def _text_around(middle: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.text(max_size=8), middle, st.text(max_size=8)).map("".join)


def _huge_text() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from("xé中"), st.integers(0, 16)).map(
        lambda pair: pair[0] * (MEGABYTE // len(pair[0].encode())) + "y" * pair[1]
    )


STRING_KINDS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "nul": (_text_around(st.just("\x00")), "a\x00b"),
    "lone-surrogate": (_text_around(st.sampled_from(LONE_SURROGATES)), "a\ud800b"),
    "rtl-mark": (_text_around(st.sampled_from(RTL_MARKS)), "\u202egnp.exe"),
    "megabyte": (_huge_text(), "x" * MEGABYTE),
}
NUMBER_KINDS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "huge": (st.integers(2**63, 10**40) | st.integers(-(10**40), -(2**63)), 10**30),
    "negative": (st.integers(max_value=-1), -1),
    "fractional": (
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
        0.5,
    ),
    "nan": (st.sampled_from([math.nan, math.inf, -math.inf]).map(NotJson), NotJson(math.nan)),
    "boolean": (st.booleans(), True),
    "numeric-string": (st.integers(-5, 5).map(str), "1"),
}
BOOLEAN_KINDS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "number": (st.integers(-1, 2), 1),
    "string": (st.sampled_from(["true", "yes", "1", ""]), "true"),
}
DATE_KINDS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "date-extreme": (st.sampled_from(DATE_EXTREMES), DATE_EXTREMES[0]),
}
BODY_KINDS: dict[str, tuple[st.SearchStrategy[Any], Any]] = {
    "deep-nesting": (
        st.tuples(st.integers(DEPTH, DEPTH + 500), st.sampled_from(["[]", "{}"])).map(
            lambda pair: Nested(pair[0], pair[1])
        ),
        Nested(DEPTH, "[]"),
    ),
}


@dataclass(frozen=True)
class Case:
    """One field of one operation and one kind of hostile value for it."""

    method: str
    path: str
    location: str  # path, query, body or form
    field: str  # as the service names it: ``items[0].quantity``
    kind: str
    schema: Mapping[str, Any]  # the field's, references resolved
    operation: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)
    document: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.location}:{self.field} {self.kind}"

    @property
    def values(self) -> st.SearchStrategy[Any]:
        strategy: st.SearchStrategy[Any] = _kinds_for(self.schema, self.location)[self.kind][0]
        return strategy

    @property
    def canonical(self) -> Any:
        return _kinds_for(self.schema, self.location)[self.kind][1]


@dataclass(frozen=True)
class Request:
    method: str
    url: str  # path and encoded query string
    body: bytes | None
    content_type: str | None


# -- reading the document ----------------------------------------------------------------


def resolve(document: Mapping[str, Any], schema: Any, seen: frozenset[str] = frozenset()) -> Any:
    """``schema`` with every ``$ref`` into the document replaced by what it names."""
    if isinstance(schema, list):
        return [resolve(document, item, seen) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        if ref in seen:
            return {}  # a recursive schema: anything below this level
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        return resolve(document, {**target, **rest}, seen | {ref})
    return {key: resolve(document, value, seen) for key, value in schema.items()}


def _concrete(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first member of a union that is not ``null`` (how optional fields are written).
    A schema with a type or properties of its own is its own concrete form (its ``oneOf``
    only says which of them go together)."""
    if "type" in schema or "properties" in schema:
        return schema
    for key in ("anyOf", "oneOf"):
        members = schema.get(key)
        if isinstance(members, list):
            for member in members:
                if isinstance(member, Mapping) and member.get("type") != "null":
                    return _concrete(member)
    members = schema.get("allOf")
    if isinstance(members, list) and len(members) == 1 and isinstance(members[0], Mapping):
        return _concrete(members[0])
    return schema


def _type(schema: Mapping[str, Any]) -> str | None:
    kind = _concrete(schema).get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _kinds_for(schema: Mapping[str, Any], location: str) -> dict[str, tuple[Any, Any]]:
    kinds: dict[str, tuple[Any, Any]] = {}
    concrete = _concrete(schema)
    kind = _type(schema)
    if kind in {"integer", "number"}:
        kinds |= NUMBER_KINDS
    elif kind == "boolean":
        kinds |= BOOLEAN_KINDS
    elif kind == "string" or kind is None:
        kinds |= STRING_KINDS
        if location in {"path", "query"}:
            # A URL holds no megabyte: NGINX answers 414 long before (and HTTP clients refuse
            # URLs over 64 KiB); the longest a URL can carry stands in for it.
            del kinds["megabyte"]
            kinds["long"] = (st.integers(40_000, 60_000).map(lambda n: "x" * n), "x" * 60_000)
        if concrete.get("format") == "date-time":
            kinds |= DATE_KINDS
    if location == "body":
        kinds |= BODY_KINDS
        if kind in {"array", "object"}:
            kinds |= {"nul": STRING_KINDS["nul"]}  # a string where a structure belongs
    return kinds


def _body_fields(schema: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    concrete = _concrete(schema)
    if _type(concrete) == "object" or "properties" in concrete:
        for name, member in (concrete.get("properties") or {}).items():
            path = f"{prefix}.{name}" if prefix else name
            yield path, member
            yield from _body_fields(member, path)
    elif _type(concrete) == "array" and isinstance(concrete.get("items"), Mapping):
        path = f"{prefix}[0]"
        yield path, concrete["items"]
        yield from _body_fields(concrete["items"], path)


def cases(document: Mapping[str, Any]) -> list[Case]:
    """Every (operation, field, kind) the document allows for."""
    found: list[Case] = []
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            operation = resolve(document, operation)
            # Parameters declared for the whole path belong to each of its operations.
            shared = [
                parameter
                for parameter in resolve(document, item.get("parameters", []))
                if parameter.get("name")
                not in {own.get("name") for own in operation.get("parameters", [])}
            ]
            operation = {**operation, "parameters": [*operation.get("parameters", []), *shared]}
            fields: list[tuple[str, str, Any]] = [
                (parameter["in"], parameter["name"], parameter.get("schema", {}))
                for parameter in operation.get("parameters", [])
                if parameter.get("in") in {"path", "query"}
            ]
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, location in ((JSON, "body"), (FORM, "form")):
                if media_type in content:
                    body_schema = content[media_type].get("schema", {})
                    fields += [
                        (location, name, member) for name, member in _body_fields(body_schema, "")
                    ]
                    break
            for location, name, schema in fields:
                for kind in _kinds_for(schema, location):
                    found.append(
                        Case(method, path, location, name, kind, schema, operation, document)
                    )
    return found


# -- building a request ------------------------------------------------------------------


def example(schema: Mapping[str, Any]) -> Any:
    """A plain value the schema accepts, enough to carry one hostile field to the service."""
    concrete = _concrete(schema)
    for key in ("const", "default"):
        if key in concrete and concrete[key] is not None:
            return copy.deepcopy(concrete[key])
    if concrete.get("examples"):
        return copy.deepcopy(concrete["examples"][0])
    if concrete.get("enum"):
        return concrete["enum"][0]
    kind = _type(concrete)
    if kind == "object" or "properties" in concrete:
        return _example_object(concrete)
    if kind == "array":
        items = concrete.get("items")
        item = example(items if isinstance(items, Mapping) else {})
        return [item] * max(1, int(concrete.get("minItems", 1)))
    return _example_scalar(concrete, kind)


def _example_object(schema: Mapping[str, Any]) -> dict[str, Any]:
    properties = dict(schema.get("properties") or {})
    required = list(schema.get("required", []))
    variants = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(variants, list) and variants and isinstance(variants[0], Mapping):
        # The first variant (a grant type, say): its constants and what it requires.
        for name, member in (variants[0].get("properties") or {}).items():
            properties[name] = {**properties.get(name, {}), **member}
        required += [name for name in variants[0].get("required", []) if name not in required]
    return {name: example(properties.get(name, {})) for name in required}


def _example_scalar(schema: Mapping[str, Any], kind: str | None) -> Any:
    if kind in {"integer", "number"}:
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return max(1, int(low) + (1 if "exclusiveMinimum" in schema else 0))
    if kind == "boolean":
        return False
    return _example_string(schema)


def _example_string(schema: Mapping[str, Any]) -> str:
    formats = {
        "email": "fuzz@example.com",
        "uuid": str(uuid.UUID(int=1)),
        "date-time": "2026-01-01T00:00:00Z",
        "date": "2026-01-01",
        "uri": "https://example.com/",
    }
    text = formats.get(str(schema.get("format")), "Fuzz")
    return text + "x" * max(0, int(schema.get("minLength", 0)) - len(text))


def _set(body: Any, path: str, value: Any) -> Any:
    """``body`` with the field at ``path`` (``items[0].quantity``) set, parents created."""
    parts = path.replace("[", ".[").split(".")
    root: dict[str, Any] = {"": body}
    target: Any = root
    key: Any = ""
    for part in parts:
        if not part:
            continue
        container = target[key]
        if part.startswith("["):
            index = int(part[1:-1])
            if not isinstance(container, list) or not container:
                container = [{}]
                target[key] = container
            target, key = container, index
        else:
            if not isinstance(container, dict):
                container = {}
                target[key] = container
            target, key = container, part
    target[key] = value
    return root[""]


def _to_json(value: Any) -> str:
    """JSON text for a body holding hostile leaves (``Nested``, ``NotJson``, surrogates)."""
    if isinstance(value, Nested):
        return value.text()
    if isinstance(value, NotJson):
        return json.dumps(value.value)  # NaN / Infinity: Python's token, not JSON's
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_to_json(item) for item in value) + "]"
    return json.dumps(value)  # ensure_ascii: a lone surrogate is written as its \u escape


def _plain(value: Any) -> str:
    """A hostile value as the text a query string or form field carries."""
    if isinstance(value, NotJson):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _encode(pairs: Mapping[str, Any]) -> str:
    # surrogatepass: a lone surrogate goes as the three bytes UTF-8 has no character for.
    return "&".join(
        f"{quote(name, safe='')}={quote(_plain(value), safe='', errors='surrogatepass')}"
        for name, value in pairs.items()
    )


def request(case: Case, value: Any) -> Request:
    """The request that carries ``value`` in ``case``'s field, everything else plain."""
    path_values: dict[str, Any] = {}
    query: dict[str, Any] = {}
    for parameter in case.operation.get("parameters", []):
        if parameter.get("in") == "path":
            path_values[parameter["name"]] = example(parameter.get("schema", {}))
        elif parameter.get("in") == "query" and parameter.get("required"):
            query[parameter["name"]] = example(parameter.get("schema", {}))
    body: Any = None
    content = case.operation.get("requestBody", {}).get("content", {})
    media_type = next((m for m in (JSON, FORM) if m in content), None)
    if media_type is not None:
        body = example(content[media_type].get("schema", {}))
    if case.location == "path":
        path_values[case.field] = value
    elif case.location == "query":
        query[case.field] = value
    else:
        body = _set(body, case.field, value)
    url = case.path
    for name, path_value in path_values.items():
        encoded = quote(_plain(path_value), safe="", errors="surrogatepass")
        url = url.replace("{" + name + "}", encoded)
    # A path parameter the document leaves undeclared: an id no row has.
    url = re.sub(r"\{[^}]+\}", str(uuid.UUID(int=1)), url)
    if query:
        url += "?" + _encode(query)
    raw: bytes | None = None
    if media_type == JSON:
        raw = _to_json(body).encode()
    elif media_type == FORM:
        raw = _encode(body if isinstance(body, Mapping) else {}).encode()
    return Request(case.method.upper(), url, raw, media_type)


# -- judging the answer ------------------------------------------------------------------


def _accepted_by_schema(case: Case, value: Any) -> bool:
    """Whether the field's own schema allows ``value`` (a query or form value is text, read
    as the number or boolean its schema names)."""
    if isinstance(value, Nested | NotJson):
        return False
    if case.location in {"query", "path", "form"}:
        value = _read_text(_plain(value), _type(case.schema))
        if value is None:
            return False
    if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
        return False  # no UTF-8 text holds one, whatever the pattern says
    try:
        jsonschema.validate(value, dict(case.schema), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return True


def _read_text(text: str, kind: str | None) -> Any:
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            return None
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if kind == "boolean":
        return {"true": True, "false": False}.get(text)
    return text


def _names(error: Mapping[str, Any], field_name: str) -> bool:
    named = str(error.get("field", ""))
    return named == field_name or named.startswith((f"{field_name}.", f"{field_name}["))


def judge(case: Case, value: Any, status: int, content_type: str | None, body: bytes) -> str | None:
    """What is wrong with the answer to ``case`` carrying ``value``, or None.

    Never a 5xx. A value its schema refuses is always refused (4xx). Every 4xx is
    problem+json (the OAuth endpoints' errors excepted) of a kind that fits: a 422 naming the
    field (or one that only the database's state explains), a 400 for a body that cannot be
    read as JSON or text, a 413 for one that is too large, a 404 for an id in the path. A
    value its schema accepts may be taken (2xx) or refused for what the service knows (404,
    409, the state-dependent 422s)."""
    if status >= 500:
        return f"answered {status}"
    accepted = _accepted_by_schema(case, value)
    if status < 400:
        taken = accepted or (case.path == REVOCATION_PATH and status == 200)
        return None if taken else f"took a value its schema refuses ({status})"
    media_type = (content_type or "").partition(";")[0].strip()
    if media_type == PROBLEM_CONTENT_TYPE:
        try:
            problem = json.loads(body)
        except ValueError:
            return f"{status} with a body that is not JSON"
        return _judge_problem(case, accepted, status, problem)
    if case.path in OAUTH_PATHS:
        return _judge_oauth(status, body)
    return f"{status} as {content_type!r}, not problem+json"


def _judge_problem(
    case: Case, accepted: bool, status: int, problem: Mapping[str, Any]
) -> str | None:
    slug = str(problem.get("type", "")).rsplit("/", 1)[-1]
    errors = problem.get("errors") or []
    fits = {
        (422, "validation"): accepted or any(_names(error, case.field) for error in errors),
        # Unreadable: nested too deep, NaN, bytes that are not UTF-8.
        (400, "malformed-request"): case.location != "path",
        (413, "body-too-large"): True,
        (404, "not-found"): case.location == "path" or accepted,
    }
    state_dependent = {problem_type.slug for problem_type in STATE_DEPENDENT}
    if fits.get((status, slug)) or (status == 422 and slug in state_dependent):
        return None
    # What the service knows: a missing row, a conflict, a throttled sign-in.
    if status in {401, 403, 404, 409, 429} and accepted:
        return None
    if status == 422 and slug == "validation":
        return f"422 names {[e.get('field') for e in errors]}, not {case.field}"
    return f"{status} {slug}: {problem.get('detail')!r}"


# RFC 6749 5.2's answers to a request that is wrong, and 7009's to an unknown token type.
OAUTH_REFUSALS = frozenset(
    {
        "invalid_request",
        "invalid_grant",
        "invalid_client",
        "invalid_scope",
        "unsupported_grant_type",
        "unsupported_token_type",
    }
)


def _judge_oauth(status: int, body: bytes) -> str | None:
    try:
        error = json.loads(body)
    except ValueError:
        return f"OAuth endpoint answered {status} with a body that is not JSON"
    if status in {400, 401} and error.get("error") in OAUTH_REFUSALS:
        return None
    return f"OAuth endpoint answered {status} {error!r}"


SendRequest = Callable[[Request], tuple[int, str | None, bytes]]


def check(send: SendRequest, case: Case, value: Any) -> str | None:
    """Send ``value`` in ``case``'s field; what is wrong with the answer, or None."""
    status, content_type, body = send(request(case, value))
    verdict = judge(case, value, status, content_type, body)
    if verdict is None:
        return None
    shown = repr(value)
    shown = shown if len(shown) < 80 else shown[:77] + "..."
    return f"{case} {shown}: {verdict}; body {body[:300]!r}"


def drawn(case: Case) -> st.SearchStrategy[tuple[Case, Any]]:
    """``case`` and a value of its kind, drawn as one (for ``flatmap``)."""
    return st.tuples(st.just(case), case.values)


def served_cases(send: SendRequest, document_path: str = "/openapi.json") -> list[Case]:
    """The cases of the document the service itself serves."""
    status, _, document = send(Request("GET", document_path, None, None))
    assert status == 200, document[:300]
    return cases(json.loads(document))


def sweep(send: SendRequest, found: list[Case]) -> list[str]:
    """Every case once, with its kind's canonical value: what went wrong, one line each."""
    return [problem for case in found if (problem := check(send, case, case.canonical))]


# For the property-based half: bounded, the same examples on every run (CI is reproducible),
# no example database left behind. SHOPSTACK_HOSTILE_EXAMPLES looks further.
FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("SHOPSTACK_HOSTILE_EXAMPLES", "150")),
    derandomize=True,
    database=None,
    deadline=None,
    # A megabyte string takes a moment to draw, and a request to answer.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# The kinds every service's document has a field for; a sweep without them tested little.
EXPECTED_KINDS = frozenset({"nul", "lone-surrogate", "megabyte", "deep-nesting", "huge", "nan"})


# -- the tests: a service's test module imports both (pytest collects them there) and
# -- provides the fixtures ``send`` (a SendRequest to its app) and ``found`` (its cases).


def test_every_field_refuses_every_kind_of_hostile_value(
    send: SendRequest, found: list[Case]
) -> None:
    assert {case.kind for case in found} >= EXPECTED_KINDS, "the document has too few fields"
    problems = sweep(send, found)
    assert not problems, "\n".join(problems)


# A megabyte value makes a long report; the report is what it is for.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_hostile_values_drawn_by_hypothesis_are_refused_by_field(
    send: SendRequest, found: list[Case]
) -> None:
    """hypothesis draws cases and values of their kinds (``FUZZ_SETTINGS``)."""

    @FUZZ_SETTINGS
    @given(st.sampled_from(found).flatmap(drawn))
    def refused(pair: tuple[Case, Any]) -> None:
        case, value = pair
        problem = check(send, case, value)
        assert problem is None, problem

    refused()
