import pytest

from shopstack_common.context import accept_request_id


@pytest.mark.parametrize("good", ["abc", "A-b_c.d:1", "x" * 128])
def test_well_formed_request_ids_are_kept(good: str) -> None:
    assert accept_request_id(good) == good


@pytest.mark.parametrize("bad", [None, "", "x" * 129, "has space", "new\nline", "<script>"])
def test_malformed_request_ids_are_replaced(bad: str | None) -> None:
    replaced = accept_request_id(bad)
    assert replaced != bad
    assert len(replaced) == 32
