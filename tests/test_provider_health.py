"""The documented failure policy (README, "What the scheduler promises"): a lost provider
rests a few seconds; it is excluded only after ``provider_failure_limit`` failures in a
row, and 0 means never."""

from hypothesis import given
from hypothesis import strategies as st

from golem_tasks._scheduler.health import COOLDOWN, ProviderHealth


@given(limit=st.integers(min_value=0, max_value=4),
       outcomes=st.lists(st.booleans(), max_size=12))
def test_excluded_only_after_the_limit_of_failures_in_a_row(limit, outcomes):
    health = ProviderHealth(limit)
    in_a_row = 0
    for ok in outcomes:
        if ok:
            health.succeeded("p")
            in_a_row = 0
        else:
            assert health.failed("p") == in_a_row + 1
            in_a_row += 1
        assert health.over_limit("p") == (limit > 0 and in_a_row >= limit)
        assert health.failing("p") == (in_a_row > 0)


def test_a_lost_provider_rests_for_the_cool_down_then_may_come_back():
    health = ProviderHealth(0)
    health.rest("lost", now=100.0)
    assert health.unavailable(100.0) == {"lost"}
    assert health.unavailable(100.0 + COOLDOWN - 0.01) == {"lost"}
    assert health.unavailable(100.0 + COOLDOWN) == frozenset()


def test_an_excluded_provider_stays_out_and_others_are_untouched():
    health = ProviderHealth(1)
    health.exclude("bad")
    health.rest("resting", now=0.0)
    assert health.unavailable(0.0) == {"bad", "resting"}
    assert health.unavailable(COOLDOWN + 1) == {"bad"}
    assert not health.over_limit("other") and not health.failing("other")
