"""The mutation check: a score below 85% or an unlisted survivor fails `make mutation`."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopstack_devstack.mutation import (
    EQUIVALENTS,
    Mutant,
    change_of,
    failures,
    function_of,
    read_equivalents,
    score,
    survivors_toml,
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
