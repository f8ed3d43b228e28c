"""RateLimiter against a naive reference: a list of event times per key."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def test_burst_then_refill():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # keys are independent
    clock.value += 0.5  # one token earned
    assert limiter.allow("a") and not limiter.allow("a")
    clock.value += 100  # never more than the burst
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]


def test_forgotten_keys_start_full_and_memory_is_bounded():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_keys=2)
    assert limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b") and limiter.allow("c")  # "a" is forgotten
    assert len(limiter._buckets) == 2
    assert limiter.allow("a")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("xy"), st.integers(0, 3000)), max_size=60))
def test_matches_a_reference_with_integer_rate(events):
    """With rate 1/s and burst 3, an event is allowed iff the key's bucket, replayed
    from its own history in whole seconds, holds a token."""
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=3, clock=clock)
    tokens: dict[str, float] = {}
    last: dict[str, float] = {}
    now = 0.0
    for key, step_ms in events:
        now += step_ms / 1000
        clock.value = now
        level = min(3.0, tokens.get(key, 3.0) + (now - last.get(key, now)))
        expected = level >= 1
        tokens[key], last[key] = (level - 1 if expected else level), now
        assert limiter.allow(key) == expected
