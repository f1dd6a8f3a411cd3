"""The coverage floor check: a figure below its floor fails `make test`."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import coverage
import pytest

from shopstack_devstack.coverage_floors import Figures, Floor, check, main, package_of, suggest

HALF_COVERED = """
def half(x):
    if x:
        return "yes"
    return "no"
"""


def _project(tmp_path: Path, floors: str) -> Path:
    """A project of one package whose function the run below reaches on one branch."""
    package = tmp_path / "src" / "pkg_under_floor"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(HALF_COVERED)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        textwrap.dedent(f"""
        [tool.coverage.run]
        branch = true
        parallel = true
        data_file = "{tmp_path}/data/.coverage"
        source_pkgs = ["pkg_under_floor"]

        [tool.shopstack.coverage]
        {floors}
        """)
    )
    # What a process of `make test` leaves: a parallel data file, combined by the check.
    sys.path.insert(0, str(package.parent))
    try:
        cov = coverage.Coverage(config_file=str(pyproject))
        cov.start()
        import pkg_under_floor

        pkg_under_floor.half(True)
        cov.stop()
        cov.save()
    finally:
        sys.path.remove(str(package.parent))
        sys.modules.pop("pkg_under_floor", None)
    return pyproject


@pytest.mark.parametrize(
    ("floors", "code"),
    [
        ("pkg_under_floor = { line = 75, branch = 50 }", 0),
        ("pkg_under_floor = { line = 76, branch = 50 }", 1),
        ("pkg_under_floor = { line = 75, branch = 51 }", 1),
        ("", 1),
    ],
    ids=["at-floors", "line-below", "branch-below", "no-floor"],
)
def test_the_check_fails_when_a_figure_is_below_its_floor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], floors: str, code: int
) -> None:
    # 3 of 4 statements ran (the last return did not); 1 of 2 branches of the `if`.
    pyproject = _project(tmp_path, floors)
    assert main(["check", "--pyproject", str(pyproject)]) == code
    out, err = capsys.readouterr()
    assert "pkg_under_floor" in out
    assert "75.0%" in out
    assert "50.0%" in out
    assert bool(err) == bool(code)


def test_a_package_the_tests_never_imported_fails() -> None:
    failures = check({"pkg": Figures()}, {"pkg": Floor(0, 0)})
    assert failures == ["pkg: nothing measured (did its tests run?)"]


def test_suggest_rounds_down_and_never_lowers_a_floor() -> None:
    figures = {"a": Figures(3, 2, 3, 2), "b": Figures(10, 9, 4, 1)}
    text = suggest(figures, {"b": Floor(95, 10)})
    assert "a = { line = 66, branch = 66 }" in text
    assert "b = { line = 95, branch = 25 }" in text


@pytest.mark.parametrize(
    ("path", "package"),
    [
        ("services/users/src/shopstack_users/tokens/service.py", "shopstack_users"),
        ("libs/common/src/shopstack_common/problems.py", "shopstack_common"),
        ("services/users/tests/test_x.py", None),
    ],
)
def test_a_file_counts_for_the_package_that_holds_it(path: str, package: str | None) -> None:
    assert package_of(Path(path), ["shopstack_users", "shopstack_common"]) == package
