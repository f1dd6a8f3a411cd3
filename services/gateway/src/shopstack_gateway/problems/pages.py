"""The HTML form of the registry, for a browser that follows a ``type`` link."""

from __future__ import annotations

import re
from html import escape

from shopstack_gateway.problems.schemas import ProblemTypePublic

INDEX_PATH = "/problems"
_CODE = re.compile(r"`([^`]+)`")


def _text(markdown: str) -> str:
    """Escaped, with the descriptions' `code` spans as <code>."""
    return _CODE.sub(r"<code>\1</code>", escape(markdown))


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def problem_page(problem: ProblemTypePublic) -> str:
    return _page(
        f"{problem.title} (shopstack problem type)",
        f"<h1>{escape(problem.title)}</h1>\n"
        f"<p>HTTP status {problem.status}; <code>type</code>: "
        f"<code>{escape(problem.type)}</code></p>\n"
        f"<p>{_text(problem.description)}</p>\n"
        f'<p><a href="{INDEX_PATH}">Every problem type</a></p>',
    )


def index_page(problems: list[ProblemTypePublic]) -> str:
    rows = "\n".join(
        f'<tr><td><a href="{INDEX_PATH}/{escape(p.slug)}">{escape(p.slug)}</a></td>'
        f"<td>{p.status}</td><td>{escape(p.title)}</td></tr>"
        for p in problems
    )
    return _page(
        "shopstack problem types",
        "<h1>Problem types</h1>\n<p>Every error of the platform is a problem document "
        "(RFC 9457) of one of these types.</p>\n"
        f"<table><tr><th>slug</th><th>status</th><th>title</th></tr>\n{rows}\n</table>",
    )
