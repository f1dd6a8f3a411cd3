"""The mutation check: a score below 85% or an unlisted survivor fails `make mutation`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shopstack_devstack import mutation
from shopstack_devstack.mutation import (
    EQUIVALENTS,
    SERVICES,
    SHARED,
    Mutant,
    Target,
    change_of,
    failures,
    function_of,
    module_of,
    read_equivalents,
    read_mutants,
    rotating,
    rotation_problem,
    rotation_selection,
    score,
    survivors_toml,
    target,
    touched,
)

DIFF = """--- src/shopstack_gateway/ratelimit.py
+++ src/shopstack_gateway/ratelimit.py
@@ -1,4 +1,4 @@
 def check(self):
-    interval_us = max(1, window_us // policy.limit)
+    interval_us = max(2, window_us // policy.limit)
     return interval_us"""

CHANGE = (
    "- interval_us = max(1, window_us // policy.limit)\n"
    "+ interval_us = max(2, window_us // policy.limit)"
)


def _mutants(killed: int, survived: int, change: str = CHANGE) -> list[Mutant]:
    return [Mutant("pkg.mod", "f", "", f"pkg.mod.x_f__mutmut_{i}", True) for i in range(killed)] + [
        Mutant("pkg.mod", "f", change, f"pkg.mod.x_f__mutmut_{killed + i}", False)
        for i in range(survived)
    ]


def test_the_change_is_the_changed_lines_only() -> None:
    assert change_of(DIFF) == CHANGE


@pytest.mark.parametrize(
    ("mangled", "function"),
    [
        ("shopstack_gateway.ratelimit.x\u01c1RateLimiter\u01c1check", "RateLimiter.check"),
        ("shopstack_orders.idempotency.service.x_fingerprint", "fingerprint"),
        ("shopstack_users.tokens.service.x__user_tokens", "_user_tokens"),
    ],
)
def test_a_mutant_names_its_function(mangled: str, function: str) -> None:
    assert function_of(mangled) == function


def test_an_unlisted_survivor_fails_even_above_the_threshold() -> None:
    scores, _ = score(_mutants(killed=99, survived=1), set())
    assert scores["pkg.mod"].score == 99.0
    [failure] = failures(scores)
    assert "f survives (pkg.mod.x_f__mutmut_99), not listed as equivalent" in failure
    assert "max(2, window_us" in failure


def test_a_listed_equivalent_passes_and_leaves_the_score() -> None:
    scores, stale = score(_mutants(killed=9, survived=1), {("pkg.mod", "f", CHANGE)})
    assert failures(scores) == []
    assert scores["pkg.mod"].score == 100.0
    assert stale == set()


def test_a_score_below_85_fails() -> None:
    # 5 of 6 killed (83.3%) once the listed equivalent is left out.
    mutants = [*_mutants(killed=5, survived=1), Mutant("pkg.mod", "g", "- a\n+ b", "n", False)]
    scores, _ = score(mutants, {("pkg.mod", "g", "- a\n+ b")})
    [failure] = [f for f in failures(scores) if "below" in f]
    assert "83.3% of mutants killed, below 85%" in failure


def test_an_entry_no_survivor_matches_is_reported_stale() -> None:
    _, stale = score(_mutants(killed=3, survived=0), {("pkg.mod", "f", CHANGE)})
    assert stale == {("pkg.mod", "f", CHANGE)}


def test_the_survivors_report_reads_back_as_the_equivalents_file(tmp_path: Path) -> None:
    survivor = Mutant("pkg.mod", "f", CHANGE + '\n+ "quoted" \\ back', "n", False)
    (tmp_path / EQUIVALENTS).parent.mkdir()
    (tmp_path / EQUIVALENTS).write_text(survivors_toml([survivor]))
    assert read_equivalents(tmp_path) == {survivor.key}


def test_a_timeout_is_a_kill_and_counted_apart() -> None:
    mutants = [*_mutants(killed=3, survived=0), Mutant("pkg.mod", "f", "", "t", True, True)]
    scores, _ = score(mutants, set())
    assert (scores["pkg.mod"].killed, scores["pkg.mod"].timed_out) == (4, 1)


USERS = Target(
    "users",
    (
        "services/users/src/shopstack_users/tokens/service.py",
        "services/users/src/shopstack_users/passwords.py",
    ),
    ("services/users/tests/tokens", "services/users/tests/test_passwords.py"),
)
ORDERS = Target(
    "orders",
    ("services/orders/src/shopstack_orders/catalog/stock.py",),
    ("services/orders/tests/test_stock.py",),
)


def test_a_module_is_named_by_its_import_path() -> None:
    assert USERS.modules == ("shopstack_users.tokens.service", "shopstack_users.passwords")
    assert module_of("services/orders/src/shopstack_orders/catalog/stock.py") == (
        "shopstack_orders.catalog.stock"
    )


@pytest.mark.parametrize(
    ("files", "selection"),
    [
        (
            ["services/users/src/shopstack_users/passwords.py"],
            {"users": ["shopstack_users.passwords"]},
        ),
        (["services/users/tests/tokens/test_router.py"], {"users": list(USERS.modules)}),
        (["services/users/tests/equivalent_mutants.toml"], {"users": list(USERS.modules)}),
        (["services/users/pyproject.toml"], {"users": list(USERS.modules)}),
        ([SHARED[0]], {"users": list(USERS.modules), "orders": list(ORDERS.modules)}),
        # Code the modules' tests do not select, and other tests, run nothing.
        (["services/users/src/shopstack_users/main.py", "services/users/tests/test_cli.py"], {}),
        (["README.md"], {}),
    ],
)
def test_a_change_runs_the_modules_it_can_change_the_verdicts_of(
    files: list[str], selection: dict[str, list[str]]
) -> None:
    assert touched(files, [USERS, ORDERS]) == selection


def test_every_service_names_modules_and_tests_that_exist() -> None:
    from shopstack_devstack.paths import REPO_ROOT

    for service in SERVICES:
        found = target(service)
        assert found.files
        assert found.tests
        for path in found.files + found.tests:
            assert (REPO_ROOT / path).exists(), path


def test_a_change_that_touches_no_module_runs_each_entry_in_turn() -> None:
    entries = ["gateway", "users:shopstack_users.passwords", "orders"]
    chosen = [rotating(entries, commit) for commit in ("c0", "c1", "c2", "c3")]
    assert chosen == [*entries, "gateway"]


@pytest.mark.parametrize(
    ("entry", "selection"),
    [
        ("gateway", {"gateway": []}),
        ("gateway:shopstack_gateway.keys", {"gateway": ["shopstack_gateway.keys"]}),
    ],
)
def test_a_rotation_entry_is_a_service_in_full_or_one_module(
    entry: str, selection: dict[str, list[str]]
) -> None:
    assert rotation_selection(entry) == selection
    assert rotation_problem(entry) is None


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("nosuch", "no such service: nosuch"),
        ("nosuch:shopstack_gateway.keys", "no such service: nosuch"),
        ("gateway:shopstack_gateway.proxy", "gateway does not mutate shopstack_gateway.proxy"),
        ("gateway:shopstack_users.passwords", "gateway does not mutate shopstack_users.passwords"),
    ],
)
def test_a_rotation_entry_that_names_nothing_mutated_is_refused(
    entry: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (rotation_problem(entry) or "").startswith(problem)
    with pytest.raises(SystemExit):
        mutation.main(["changed", "gateway", "--rotation", entry])
    assert f"--rotation {entry}: {problem}" in capsys.readouterr().err


def test_every_entry_of_the_makefiles_rotation_names_something_mutated() -> None:
    makefile = (mutation.REPO_ROOT / "Makefile").read_text()
    found = re.search(r"^MUTATION_ROTATION := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE)
    assert found, "the Makefile sets no MUTATION_ROTATION"
    entries = found.group(1).replace("\\\n", " ").split()
    assert entries
    assert {entry: rotation_problem(entry) for entry in entries} == dict.fromkeys(entries)


# -- a run's results, read back and checked --------------------------------------------------

RATELIMIT = "shopstack_gateway.ratelimit"


def write_meta(service_dir: Path, module: str, exit_codes: dict[str, int | None]) -> None:
    """What mutmut leaves for one source file: each mutant's exit code (None: not run)."""
    meta = service_dir / "mutants" / "src" / (module.replace(".", "/") + ".py.meta")
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": exit_codes}))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root of its own for the check, with an empty gateway."""
    monkeypatch.setattr(mutation, "REPO_ROOT", tmp_path)
    (tmp_path / "services" / "gateway").mkdir(parents=True)
    return tmp_path


def test_a_run_is_read_back_mutant_by_mutant(tmp_path: Path) -> None:
    write_meta(tmp_path, RATELIMIT, {f"{RATELIMIT}.x_check__mutmut_1": 1,
                                     f"{RATELIMIT}.x_check__mutmut_2": 36})  # fmt: skip
    # A module none of whose mutants ran was left out of the run.
    write_meta(tmp_path, "shopstack_gateway.keys", {"shopstack_gateway.keys.x_get__mutmut_1": None})
    mutants = read_mutants(tmp_path)
    assert [(m.module, m.function, m.killed, m.timed_out) for m in mutants] == [
        (RATELIMIT, "check", True, False),
        (RATELIMIT, "check", True, True),
    ]


def test_a_run_that_did_not_finish_is_refused(tmp_path: Path) -> None:
    write_meta(tmp_path, RATELIMIT, {f"{RATELIMIT}.x_check__mutmut_1": 1,
                                     f"{RATELIMIT}.x_check__mutmut_2": None})  # fmt: skip
    with pytest.raises(RuntimeError, match="did not finish"):
        read_mutants(tmp_path)


def test_no_equivalents_file_lists_nothing(tmp_path: Path) -> None:
    assert read_equivalents(tmp_path) == set()


def test_a_service_without_a_run_fails_the_check(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mutation.check(["gateway"]) == 1
    assert "no mutants found" in capsys.readouterr().err


def test_a_run_with_every_mutant_killed_passes_and_names_stale_entries(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = repo / "services" / "gateway"
    write_meta(gateway, RATELIMIT, {f"{RATELIMIT}.x_check__mutmut_1": 1})
    (gateway / EQUIVALENTS).parent.mkdir(parents=True)
    (gateway / EQUIVALENTS).write_text(
        f'[[equivalent]]\nmodule = "{RATELIMIT}"\nfunction = "check"\nchange = "- a\\n+ b"\n'
        'reason = "once"\n'
    )
    assert mutation.check(["gateway"]) == 0
    out = capsys.readouterr().out
    assert f"{RATELIMIT}" in out
    assert "100.0%" in out
    assert "no longer survives" in out


def test_a_module_asked_for_without_results_fails_the_check(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_meta(repo / "services" / "gateway", RATELIMIT, {f"{RATELIMIT}.x_check__mutmut_1": 1})
    asked = {"gateway": [RATELIMIT, "shopstack_gateway.keys"]}
    assert mutation.check(["gateway"], modules=asked) == 1
    assert "shopstack_gateway.keys: no results" in capsys.readouterr().err


def test_the_merge_base_is_a_commit_of_this_checkout() -> None:
    assert re.fullmatch("[0-9a-f]{40}", mutation.merge_base())


# -- `changed`: what a change selects (git and the run stubbed: their own tests are above) ----


@pytest.fixture
def selected(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, list[str]]]:
    runs: list[dict[str, list[str]]] = []

    def run(selection: dict[str, list[str]], *, children: int) -> int:
        runs.append(selection)
        return 0

    monkeypatch.setattr(mutation, "run", run)
    return runs


def diff_of(monkeypatch: pytest.MonkeyPatch, files: list[str]) -> None:
    answers = {"diff": "\n".join(files), "rev-parse": "a0"}
    monkeypatch.setattr(mutation, "_git", lambda command, *_: answers[command])


@pytest.mark.parametrize(
    ("files", "selection"),
    [
        (["services/gateway/src/shopstack_gateway/ratelimit.py"], {"gateway": [RATELIMIT]}),
        # A test of the service: all of its modules, as one run with no patterns.
        (["services/gateway/tests/test_ratelimit.py"], {"gateway": []}),
        # Nothing held touched: the service in turn, in full.
        (["README.md"], {"gateway": []}),
    ],
)
def test_changed_runs_what_the_change_touches(
    monkeypatch: pytest.MonkeyPatch,
    selected: list[dict[str, list[str]]],
    files: list[str],
    selection: dict[str, list[str]],
) -> None:
    diff_of(monkeypatch, files)
    assert mutation.main(["changed", "gateway", "--rotation", "gateway", "--base", "b0"]) == 0
    assert selected == [selection]


def test_changed_runs_the_module_of_a_rotation_entry(
    monkeypatch: pytest.MonkeyPatch, selected: list[dict[str, list[str]]]
) -> None:
    diff_of(monkeypatch, ["README.md"])
    argv = ["changed", "gateway", "--rotation", f"gateway:{RATELIMIT}", "--base", "b0"]
    assert mutation.main(argv) == 0
    assert selected == [{"gateway": [RATELIMIT]}]


def test_run_runs_each_service_in_full(selected: list[dict[str, list[str]]]) -> None:
    assert mutation.main(["run", "gateway", "users"]) == 0
    assert selected == [{"gateway": [], "users": []}]


def test_an_unknown_service_is_refused() -> None:
    with pytest.raises(SystemExit):
        mutation.main(["run", "nosuch"])


def test_check_reads_the_last_run(repo: Path) -> None:
    assert mutation.main(["check", "gateway"]) == 1
