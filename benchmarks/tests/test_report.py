"""The contract every benchmark writes to, and the table `make bench` prints from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.report import FIELDS, main, ratio_row, row, write_result


def test_a_result_file_holds_the_benchmark_and_its_rows_in_the_contract(tmp_path: Path) -> None:
    rows = [
        ratio_row("hop", 300.0, "req/s", baseline_name="bare", baseline=600.0, at_least=0.6),
        row("added p50", 0.25, "ms", target="<= 0.3 ms", met=True),
    ]
    path = write_result("gateway-hop", rows, directory=tmp_path)
    assert path == tmp_path / "gateway-hop.json"
    assert json.loads(path.read_text()) == {
        "benchmark": "gateway-hop",
        "rows": [
            {
                "figure": "hop",
                "value": 300.0,
                "unit": "req/s",
                "baseline_name": "bare",
                "baseline": 600.0,
                "ratio": 0.5,
                "target": ">= 0.6x",
                "met": False,
            },
            {
                "figure": "added p50",
                "value": 0.25,
                "unit": "ms",
                "baseline_name": None,
                "baseline": None,
                "ratio": None,
                "target": "<= 0.3 ms",
                "met": True,
            },
        ],
    }


@pytest.mark.parametrize(
    ("at_least", "target", "met"),
    [(0.4, ">= 0.4x", True), (0.5, ">= 0.5x", True), (None, None, None)],
)
def test_a_ratio_row_meets_its_target_at_or_above_it(
    at_least: float | None, target: str | None, met: bool | None
) -> None:
    made = ratio_row("f", 1.0, "req/s", baseline_name="b", baseline=2.0, at_least=at_least)
    assert (made["ratio"], made["target"], made["met"]) == (0.5, target, met)


@pytest.mark.parametrize(
    "broken",
    [
        {k: v for k, v in row("f", 1.0, "ms").items() if k != "met"},
        {**row("f", 1.0, "ms"), "note": "not in the contract"},
    ],
    ids=["missing field", "unknown field"],
)
def test_a_row_outside_the_contract_is_refused(tmp_path: Path, broken: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="row"):
        write_result("broken", [broken], directory=tmp_path)
    assert not (tmp_path / "broken.json").exists()


def test_the_table_has_a_line_per_row_of_every_result_and_lists_the_targets_missed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_result(
        "gateway-hop",
        [ratio_row("hop", 300.0, "req/s", baseline_name="bare", baseline=600.0, at_least=0.6)],
        directory=tmp_path,
    )
    # Written by another benchmark without the helper: the file is the contract.
    figure: dict[str, object] = dict.fromkeys(FIELDS)
    figure.update(figure="orders/s", value=812.5, unit="orders/s")
    (tmp_path / "orders.json").write_text(json.dumps({"benchmark": "orders", "rows": [figure]}))

    assert main(tmp_path) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0] == "| benchmark | figure | value | baseline | ratio | target | met |"
    assert (
        lines[2]
        == "| gateway-hop | hop | 300 req/s | 600 req/s (bare) | 0.50x | >= 0.6x | **no** |"
    )
    assert lines[3] == "| orders | orders/s | 812 orders/s |  |  |  |  |"
    assert "targets missed:\n  gateway-hop: hop (>= 0.6x)" in out


def test_no_results_at_all_is_a_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(tmp_path) == 1
    assert "no benchmark results" in capsys.readouterr().err
