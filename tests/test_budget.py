"""A provider whose budget covers no more providers (#4): the engaged ones finish the
work; with none engaged the job fails at once, saying why, without retrying engage."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from typing import AbstractSet, Optional

import pytest

from golem_tasks import BrokenPool, BudgetExhausted, Golem
from golem_tasks.providers.base import Permit
from golem_tasks.testing import FakeProvider, FakeSession

from .helpers import finishes

MESSAGE = "the budget of 1 GLM does not cover another provider; give a larger budget= to engage more"


class Budgeted(FakeProvider):
    """Engages ``affordable`` providers, then raises :class:`BudgetExhausted`."""

    def __init__(self, affordable: int) -> None:
        super().__init__(assert_all_used=False)
        self.on_run(lambda line: line.startswith("echo "), handler=lambda command, session: command.args[1])
        self.affordable = affordable
        self.refused = 0
        #: Set at the first refusal, so a test can hold work until the budget was hit.
        self.first_refusal = threading.Event()
        self._count_lock = threading.Lock()

    def engage(self, *, exclude: AbstractSet[str] = frozenset(), abort: Optional[threading.Event] = None,
               permit: Optional[Permit] = None) -> FakeSession:
        with self._count_lock:
            if self.affordable <= 0:
                self.refused += 1
                self.first_refusal.set()
                raise BudgetExhausted(MESSAGE, budget=Decimal(1), spent=Decimal(0), expected=Decimal("0.6"))
            self.affordable -= 1
        return super().engage(exclude=exclude, abort=abort, permit=permit)


def echo(ctx, i):
    results = yield ctx.run("echo", str(i))
    return results[0].stdout, ctx.provider_id


def test_the_engaged_provider_finishes_the_work_when_no_other_fits(caplog):
    provider = Budgeted(affordable=1)

    def echo_after_a_refusal(ctx, i):
        # The test is about a refused second engage(): hold the first fragment (and so
        # the one engaged provider) until another slot has asked and been refused.
        if i == 0:
            assert provider.first_refusal.wait(30), "no second provider was asked for"
        return (yield from echo(ctx, i))

    with caplog.at_level(logging.WARNING, logger="golem_tasks"):
        with Golem(provider, max_workers=3, progress=False) as golem:
            answers = list(golem.map(echo_after_a_refusal, range(6)))
    assert [out for out, _ in answers] == [str(i) for i in range(6)]
    assert {who for _, who in answers} == {"fake-1"}
    assert provider.refused >= 1
    warnings = [r.getMessage() for r in caplog.records if "engaging no more providers" in r.getMessage()]
    assert len(warnings) == 1 and MESSAGE in warnings[0]


def test_with_no_provider_engaged_the_job_fails_at_once_with_the_budget_error():
    provider = Budgeted(affordable=0)
    with Golem(provider, max_workers=1, progress=False) as golem:
        with pytest.raises(BrokenPool) as caught:
            list(golem.map(echo, range(3)))
    assert MESSAGE in str(caught.value)
    assert isinstance(caught.value.__cause__, BudgetExhausted)
    assert provider.refused == 1  # spending only grows: engage is not retried


def test_slots_refused_together_end_the_job_instead_of_asking_again_and_again():
    """Several slots asking at once, all refused (the budget is spent): each sees the
    others still engaging, so none may break the pool alone; the last one out asks once
    more and, with nothing engaged, the job fails with the budget error."""
    provider = Budgeted(affordable=0)

    def job():
        with Golem(provider, max_workers=3, progress=False) as golem:
            with pytest.raises(BrokenPool) as caught:
                list(golem.map(echo, range(9)))
        return caught.value

    error = finishes(job)  # before the fix: refused again and again, for ever
    assert MESSAGE in str(error)
    # the slots of the first round and a few last ones out (how many overlap is timing)
    assert provider.refused < 20
