"""PromQL as data, through Prometheus's grammar (promql-parser): the selectors of an
expression, with Grafana's variables replaced the way Grafana's dashboard linter does, so
dashboard queries parse too."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass

import promql_parser

# A duration nobody writes by hand stands in for $__rate_interval, so a range that is
# $__rate_interval can be told from one that is not after parsing.
RATE_INTERVAL_STAND_IN = "7777s"
RATE_INTERVAL_SECONDS = 7777
_RANGE_VARIABLES = re.compile(
    r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}"
)


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """One vector selector: its metric name, matchers, the range it was read over (None for
    an instant selector) and the functions it sits inside, innermost first."""

    name: str
    matchers: tuple[Matcher, ...]
    range_seconds: float | None
    functions: tuple[str, ...]

    def matcher(self, label: str) -> Matcher | None:
        return next((m for m in self.matchers if m.name == label), None)


@dataclass(frozen=True)
class Aggregation:
    operator: str
    labels: tuple[str, ...]
    without: bool


def expand_grafana_variables(expr: str) -> str:
    """Range variables become durations: ``$__rate_interval`` a stand-in, ``$__interval`` and
    ``$__range`` another. Other variables only ever stand inside label values here, where
    PromQL takes them as text."""
    return _RANGE_VARIABLES.sub(
        lambda m: (
            RATE_INTERVAL_STAND_IN
            if "rate_interval" in m.group(0)
            else f"{RATE_INTERVAL_SECONDS + 1}s"
        ),
        expr,
    )


def parse(expr: str) -> promql_parser.Expr:
    return promql_parser.parse(expand_grafana_variables(expr))


# The parser's match operators cannot be dict keys; their names can.
_MATCH_OPS = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}


def selectors(expr: str) -> list[Selector]:
    found: list[Selector] = []

    def visit(node: object, functions: tuple[str, ...], range_seconds: float | None) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = tuple(
                Matcher(m.name, _MATCH_OPS[str(m.op)], m.value)
                for m in node.matchers.matchers
                if m.name != "__name__"
            )
            found.append(Selector(node.name or "", matchers, range_seconds, functions))
        elif isinstance(node, promql_parser.MatrixSelector):
            visit(node.vector_selector, functions, _seconds(node.range))
        elif isinstance(node, promql_parser.SubqueryExpr):
            visit(node.expr, functions, _seconds(node.range))
        elif isinstance(node, promql_parser.Call):
            for argument in node.args:
                visit(argument, (node.func.name, *functions), range_seconds)
        else:
            for child in _children(node):
                visit(child, functions, range_seconds)

    visit(parse(expr), (), None)
    return found


def aggregations(expr: str) -> list[Aggregation]:
    found: list[Aggregation] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.AggregateExpr):
            modifier = node.modifier
            labels = tuple(modifier.labels) if modifier is not None else ()
            without = (
                modifier is not None and modifier.type == promql_parser.AggModifierType.Without
            )
            found.append(Aggregation(str(node.op), labels, without))
        for child in _children(node):
            visit(child)

    visit(parse(expr))
    return found


def _children(node: object) -> Iterator[object]:
    if isinstance(node, promql_parser.AggregateExpr):
        yield node.expr
        if node.param is not None:
            yield node.param
    elif isinstance(node, promql_parser.BinaryExpr):
        yield node.lhs
        yield node.rhs
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        yield node.expr
    elif isinstance(node, promql_parser.Call):
        yield from node.args
    elif isinstance(node, promql_parser.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, promql_parser.SubqueryExpr):
        yield node.expr


def _seconds(duration: datetime.timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def is_rate_interval(seconds: float | None) -> bool:
    return seconds == RATE_INTERVAL_SECONDS
