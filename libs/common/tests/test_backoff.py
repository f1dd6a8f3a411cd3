from shopstack_common.backoff import BackOff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_skips_the_dependency_for_its_window_then_tries_again() -> None:
    clock = Clock()
    backoff = BackOff(2.0, clock=clock)
    assert not backoff.skipping
    backoff.failed()
    assert backoff.skipping
    clock.now += 1.999
    assert backoff.skipping
    clock.now += 0.001
    assert not backoff.skipping  # the window is over: the next call tries
    backoff.failed()
    clock.now += 1.0
    backoff.succeeded()
    assert not backoff.skipping


def test_a_zero_window_never_skips() -> None:
    backoff = BackOff(0.0, clock=Clock())
    backoff.failed()
    assert not backoff.skipping
