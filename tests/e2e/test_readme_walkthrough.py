"""The README's "Try it", run as printed against `make up`, twice in a row."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import LocalPlatform

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
PRINTED_ORIGIN = "http://127.0.0.1:8080"


def walkthrough() -> str:
    """The first sh block after the "### Try it" heading."""
    text = README.read_text()
    section = text.split("### Try it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "README's Try it has no sh block"
    return block[1]


def json_answers(output: str) -> list[dict[str, object]]:
    """Each curl answer is one JSON document; the walk-through prints them back to back."""
    decoder = json.JSONDecoder()
    answers, at = [], 0
    while at < len(output):
        if output[at].isspace():
            at += 1
            continue
        answer, at = decoder.raw_decode(output, at)
        answers.append(answer)
    return answers


def test_the_walkthrough_runs_twice_as_printed(running_platform: LocalPlatform) -> None:
    script = walkthrough()
    assert PRINTED_ORIGIN in script
    # The platform under test listens elsewhere; nothing else of the text changes. Every
    # command's failure fails the run (a KeyError in a pipe, an unset variable).
    script = "set -eu -o pipefail\n" + script.replace(PRINTED_ORIGIN, running_platform.url)
    orders = []
    for run in (1, 2):
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"run {run}:\n{result.stdout}\n{result.stderr}"
        assert result.stderr == "", f"run {run}: {result.stderr}"
        answers = json_answers(result.stdout)
        registered, *_ = answers
        assert ("id" in registered) if run == 1 else (registered["status"] == 409), registered
        placed = [a for a in answers if "items" in a and "status" in a and "id" in a]
        assert len(placed) == 1, answers
        assert placed[0]["status"] != 409, placed
        orders.append(placed[0]["id"])
        ready = answers[-1]
        assert ready["status"] == "ok", ready
    assert orders[0] != orders[1]
