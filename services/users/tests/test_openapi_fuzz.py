"""schemathesis against the service's own OpenAPI document, in process, on the real
PostgreSQL and Redis: what ``schemathesis run`` does (its engine, every default check, every
phase: examples, coverage, fuzzing, and the stateful phase along the document's links:
register → token → me, list → read → change). 0 failures is the bar.

The service sits behind the stand-in for the gateway's edge (``GatewayEdge`` in conftest):
the default credentials are an admin's bearer token; links carry a new user's token to
``/users/me``.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from schemathesis.schemas import BaseSchema
from werkzeug.serving import make_server

from shopstack_devstack.ports import free_port

if TYPE_CHECKING:
    from conftest import AppFactory, GatewayEdge, UsersApi

CONFIG = Path(__file__).with_name("schemathesis.toml")
# schemathesis' own default is 100 per operation and phase; CI may ask for that.
MAX_EXAMPLES = int(os.environ.get("SHOPSTACK_FUZZ_MAX_EXAMPLES", "30"))


@dataclass
class Run:
    """What one schemathesis run found, phase by phase."""

    cases: Counter[str] = field(default_factory=Counter)
    # Stateful phase: (link followed, status of the answer) -> how often.
    links: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop_reason: str = ""

    def report(self) -> str:
        lines = [
            f"stopped: {self.stop_reason}",
            f"test cases by phase: {dict(self.cases)}",
            f"links followed: {sorted(self.links.items())}",
        ]
        return "\n".join(lines + self.failures + self.errors)


def run_schemathesis(schema: BaseSchema) -> Run:
    run = Run()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            run.cases[event.phase.value] += len(event.recorder.cases)
            for case_id, node in event.recorder.cases.items():
                interaction = event.recorder.interactions.get(case_id)
                if node.transition is not None and interaction and interaction.response:
                    run.links[(node.transition.id, interaction.response.status_code)] += 1
            for checks in event.recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info
                        run.failures.append(
                            f"[{event.phase.value}] {event.recorder.label}: {failure.failure}\n"
                            f"{failure.code_sample}"
                        )
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"[error] {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"[fatal] {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.stop_reason = event.stop_reason.value
    return run


@pytest.fixture
def edge_url(
    make_app: AppFactory, api: UsersApi, behind_gateway: type[GatewayEdge]
) -> Iterator[tuple[str, str]]:
    """The service behind the edge stand-in on a threaded WSGI server on loopback, and an
    admin's access token. (schemathesis' in-process WSGI transport cannot send the requests
    its ignored_auth check makes: it hands werkzeug's client a max_redirects argument.)"""
    app = make_app()
    admin = type(api)(app.test_client())
    admin.admin()
    token = admin.body(admin.token("root@example.com"))["access_token"]
    server = make_server("127.0.0.1", free_port(), behind_gateway(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", token
    finally:
        server.shutdown()
        thread.join(10)


# Hypothesis warns when it shows a large generated value; the run reports it, that is all.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_schemathesis_finds_nothing(edge_url: tuple[str, str]) -> None:
    url, admin_token = edge_url
    config = SchemathesisConfig.from_path(CONFIG)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=config)
    schema.config.update(headers={"Authorization": f"Bearer {admin_token}"})
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    run = run_schemathesis(schema)
    print(run.report())
    assert run.stop_reason == "completed", run.report()
    assert not run.failures, run.report()
    assert not run.errors, run.report()
    # Every phase ran, the stateful one included.
    assert set(run.cases) >= {"examples", "coverage", "fuzzing", "stateful"}, run.report()
    assert run.cases["stateful"] > 0, run.report()
    assert any(status < 400 for _, status in run.links), run.report()  # links were walked
