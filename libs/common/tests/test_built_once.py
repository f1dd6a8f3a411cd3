"""shopstack_common.built_once: built on first use, once, and again after forget_all."""

from __future__ import annotations

from shopstack_common.built_once import built_once, forget_all


def test_a_value_is_built_on_first_use_and_kept() -> None:
    builds: list[int] = []

    def build() -> list[int]:
        builds.append(len(builds))
        return builds

    value = built_once(build)
    assert builds == []
    first = value()
    assert value() is first
    assert builds == [0]


def test_forget_all_builds_every_value_again_on_next_use() -> None:
    builds: list[str] = []
    one = built_once(lambda: builds.append("one") or len(builds))
    other = built_once(lambda: builds.append("other") or len(builds))
    assert (one(), other()) == (1, 2)
    forget_all()
    assert builds == ["one", "other"]
    assert (other(), one(), one()) == (3, 4, 4)
    assert builds == ["one", "other", "other", "one"]
