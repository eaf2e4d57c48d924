"""Generated fault schedules across map, as_completed, submit and execute_tasks (see
tests/schedules.py), each under a watchdog that fails the example with every thread's
stack instead of hanging. Example counts come from the hypothesis profiles in
tests/conftest.py; benchmarks/schedules.py runs 10,000."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from .schedules import APIS, run_schedule, strategy


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(strategy())
def test_every_schedule_keeps_the_promises(case):
    run_schedule(case)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(strategy().filter(lambda case: case["api"] != "execute_tasks"))
def test_schedules_without_execute_tasks_keep_the_promises(case):
    # The part the old scheduler already keeps (issue 8 "Why"): a regression guard now.
    assert case["api"] in APIS
    run_schedule(case)
