"""Demand-driven engagement, the provider side (issue 9 item 1): when the scheduler sets
engage's ``abort`` because the work no longer needs the engagement, engage returns
promptly with EngagementCancelled, having confirmed nothing more; an agreement approved
meanwhile is terminated without an activity; the demand is subscribed only while an
engage is pending."""

from __future__ import annotations

import math
import threading
from typing import Any, List, Optional

import pytest

from golem_tasks.errors import EngagementCancelled, GolemTasksError, ProviderError
from golem_tasks.providers.base import Permit
from golem_tasks.providers.yagna import AgreementApproved

from .golem_helpers import make_provider, node, of_type

HANG = 60.0  # only catches a hang (generous: the suite must pass on a busy machine)


def wait_for(condition: Any, seconds: float = HANG) -> None:
    done = threading.Event()

    def poll() -> None:
        while not condition():
            if done.wait(0.005):
                return
        done.set()

    watcher = threading.Thread(target=poll)
    watcher.start()
    finished = done.wait(seconds)
    done.set()
    watcher.join()
    assert finished, "the condition did not come true"


class Engage:
    """``provider.engage(abort=...)`` on a thread; ``outcome`` is its result or error."""

    def __init__(self, provider: Any, permit: Optional[Permit] = None) -> None:
        self.abort = threading.Event()
        self.permit = permit
        self.done = threading.Event()
        self.outcome: Any = None
        self.thread = threading.Thread(target=self._run, args=(provider,))
        self.thread.start()

    def _run(self, provider: Any) -> None:
        try:
            self.outcome = provider.engage(abort=self.abort, permit=self.permit)
        except BaseException as exc:  # handed to the test
            self.outcome = exc
        finally:
            self.done.set()

    def result(self) -> Any:
        assert self.done.wait(HANG), "engage did not return"
        self.thread.join()
        return self.outcome


def test_engagement_cancelled_is_a_provider_error_but_not_a_failure_to_report():
    assert issubclass(EngagementCancelled, ProviderError)
    assert issubclass(EngagementCancelled, GolemTasksError)


def test_an_abort_set_before_engage_makes_no_call(daemon):
    abort = threading.Event()
    abort.set()
    with make_provider() as provider:
        with pytest.raises(EngagementCancelled):
            provider.engage(abort=abort)
    assert not daemon.agreements
    assert daemon.count("POST /market-api/v1/demands") == 0


def test_waiting_for_an_offer_ends_at_abort_and_the_demand_is_withdrawn(daemon):
    daemon.nodes.clear()  # no offer will come
    with make_provider() as provider:
        engage = Engage(provider)
        wait_for(lambda: daemon.count("POST /market-api/v1/demands") == 1)
        engage.abort.set()
        assert isinstance(engage.result(), EngagementCancelled)
        assert len(daemon.unsubscribed) == 1  # withdrawn at once, not at close
        assert not provider._market._candidates
    assert not daemon.agreements


def test_no_agreement_is_confirmed_after_abort_and_a_pending_one_is_cancelled(daemon):
    for n in daemon.nodes.values():
        n.approve = "never"
    with make_provider() as provider:
        engage = Engage(provider)
        wait_for(lambda: bool(daemon.pending()))
        engage.abort.set()
        assert isinstance(engage.result(), EngagementCancelled)
    states = [a["state"] for a in daemon.agreements.values()]
    assert states == ["Cancelled"]  # the one pending; no other was made or confirmed
    assert daemon.count("POST /market-api/v1/agreements/(?P<id>[^/]+)/confirm") == 1
    assert not daemon.activities


@pytest.mark.parametrize("order", ["approved, then abort", "abort, then approved"])
def test_an_agreement_approved_after_abort_is_terminated_without_an_activity(daemon, events, order):
    for n in daemon.nodes.values():
        n.approve = "never"
    with make_provider(events=events.append) as provider:
        engage = Engage(provider)
        wait_for(lambda: bool(daemon.pending()))
        [agreement_id] = daemon.pending()
        if order == "approved, then abort":
            # Set together, before engage's next look: the wait answers "approved" and
            # engage sees the abort right after.
            with daemon.lock:
                engage.abort.set()
                daemon.approve_now(agreement_id)
        else:
            engage.abort.set()
            daemon.approve_now(agreement_id)
        assert isinstance(engage.result(), EngagementCancelled)
        assert daemon.agreements[agreement_id]["state"] in ("Terminated", "Cancelled")
        assert not daemon.activities
    if daemon.agreements[agreement_id]["state"] == "Terminated":
        # Its provider is paid like any other: the invoice is accepted at close.
        [invoice] = [i for i, v in daemon.invoices.items() if v["agreementId"] == agreement_id]
        assert invoice in daemon.accepted
        assert [e.agreement_id for e in of_type(events, AgreementApproved)] == [agreement_id]


def test_an_engage_called_off_while_its_activity_is_created_deploys_nothing(daemon, events):
    """The daemon answers createActivity only on its 750 ms ticks; work that ends
    meanwhile must not pay for a deploy: the activity is destroyed and the agreement
    terminated without an exec."""
    engages: List[Engage] = []
    for index, (method, pattern, route, handler) in enumerate(daemon.routes):
        if (method, route) == ("POST", "/activity-api/v1/activity"):
            def create_then_abort(handler: Any = handler, **kwargs: Any) -> Any:
                answer = handler(**kwargs)
                engages[0].abort.set()  # the queue drained while the daemon waited
                return answer
            daemon.routes[index] = (method, pattern, route, create_then_abort)
    with make_provider(events=events.append) as provider:
        engages.append(Engage(provider))
        assert isinstance(engages[0].result(), EngagementCancelled)
        [activity] = daemon.activities.values()
        assert activity["state"] == "Terminated"
        assert daemon.agreements[activity["agreement"]]["state"] == "Terminated"
        assert daemon.count("POST /activity-api/v1/activity/(?P<id>[^/]+)/exec") == 0
        agreement_id = activity["agreement"]
        assert provider.engage() is not None  # the provider stays usable
    # Its provider is paid for what it was kept waiting, like any other, at close.
    [invoice] = [i for i, v in daemon.invoices.items() if v["agreementId"] == agreement_id]
    assert invoice in daemon.accepted
    assert agreement_id in [e.agreement_id for e in of_type(events, AgreementApproved)]


def test_the_demand_is_withdrawn_when_no_engage_is_pending_and_renewed_for_the_next(daemon):
    with make_provider() as provider:
        first = provider.engage()
        # the only engage returned: nobody needs offers now
        assert daemon.count("POST /market-api/v1/demands") == 1
        assert len(daemon.unsubscribed) == 1
        assert not daemon.subscriptions
        second = provider.engage()  # subscribes again
        assert daemon.count("POST /market-api/v1/demands") == 2
        assert {first.info.id, second.info.id} == {node(1).id, node(2).id}
        first.release()
        second.release()
    assert not daemon.subscriptions


def test_the_demand_stays_while_another_engage_waits(daemon):
    daemon.nodes.pop(node(2).id)  # one provider for two engages: one of them waits
    with make_provider() as provider:
        engages = [Engage(provider), Engage(provider)]
        wait_for(lambda: any(e.done.is_set() for e in engages))
        winner, waiter = engages if engages[0].done.is_set() else engages[::-1]
        session = winner.result()
        assert session.info.id == node(1).id
        assert len(daemon.subscriptions) == 1  # still looking, for the waiting one
        waiter.abort.set()
        assert isinstance(waiter.result(), EngagementCancelled)
        assert not daemon.subscriptions
        session.release()


def test_aborted_engages_leave_the_provider_usable(daemon):
    with make_provider() as provider:
        for _ in range(3):
            engage = Engage(provider)
            engage.abort.set()
            outcome = engage.result()
            if not isinstance(outcome, BaseException):
                outcome.release()
        session = provider.engage()
        session.release()


def test_close_ends_pending_engages_promptly(daemon):
    daemon.nodes.clear()
    provider = make_provider()
    engages: List[Engage] = [Engage(provider) for _ in range(3)]
    wait_for(lambda: provider._market._waiting == 3)
    provider.close()
    for engage in engages:
        assert isinstance(engage.result(), ProviderError)


def test_close_while_an_engage_deploys_terminates_its_agreement_and_accepts_the_invoice(daemon, events):
    # A direct user closes the provider from one thread while another engages: the
    # engage is called off (its abort set), its agreement terminated, and its invoice
    # accepted before close settles the payments and releases the allocation.
    from golem_tasks.providers.yagna import InvoiceAccepted
    daemon.nodes.pop(node(2).id)
    gate = daemon.nodes[node(1).id].deploy_gate = threading.Event()

    class CalledOff(threading.Event):
        def set(self) -> None:
            super().set()
            gate.set()  # the deploy finishes once close called the engage off

    provider = make_provider(events=events.append)
    real_finish = provider._payments.finish

    def finish_then_open_the_gate(wait: float) -> Any:
        try:
            return real_finish(wait=wait)
        finally:
            gate.set()  # (or, not called off, once the payments are settled)

    provider._payments.finish = finish_then_open_the_gate  # type: ignore[method-assign]
    abort = CalledOff()
    outcome: List[Any] = []

    def engage() -> None:
        try:
            outcome.append(provider.engage(abort=abort))
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    engaging = threading.Thread(target=engage)
    engaging.start()
    wait_for(lambda: daemon.activities)  # deploying, held at the gate
    provider.close()
    engaging.join(HANG)
    assert not engaging.is_alive()
    [agreement_id] = list(daemon.agreements)
    assert daemon.agreements[agreement_id]["state"] == "Terminated"
    assert [e.agreement_id for e in of_type(events, InvoiceAccepted)] == [agreement_id]
    assert provider.unpaid_agreements() == ()
    assert abort.is_set() and isinstance(outcome[0], GolemTasksError), outcome


class WatchedPermit(Permit):
    """A permit that says when the engagement first waits on it."""

    def __init__(self) -> None:
        super().__init__(math.inf)
        self.reached = threading.Event()

    def wait(self, timeout: float) -> bool:
        self.reached.set()
        return super().wait(timeout)


@pytest.mark.parametrize("then", ["allowed", "called off"])
def test_a_held_engagement_negotiates_but_signs_nothing_until_its_permit_allows(daemon, then):
    permit = WatchedPermit()
    with make_provider() as provider:
        engage = Engage(provider, permit)
        assert permit.reached.wait(HANG), "engage never waited on its permit"
        # Offers are countered meanwhile (the drafts wait as candidates), nothing is signed.
        wait_for(lambda: len(provider._market._candidates) == len(daemon.nodes))
        assert not daemon.agreements
        assert provider._payments.active() == 0
        if then == "allowed":
            permit.allow_at(0.0)
            session = engage.result()
            assert [a["state"] for a in daemon.agreements.values()] == ["Approved"]
            session.release()
        else:
            engage.abort.set()
            permit.wake()
            assert isinstance(engage.result(), EngagementCancelled)
            assert not daemon.agreements and not daemon.activities
            assert len(daemon.unsubscribed) == 1  # no engage pending: the demand is withdrawn


def test_a_held_engagement_keeps_no_draft_from_the_one_allowed(daemon):
    # One provider on the market: the engage held first must not sit on its draft, or
    # the engage allowed to sign would wait for a provider until the hold ended.
    daemon.nodes.pop(node(2).id)
    held = WatchedPermit()
    with make_provider() as provider:
        first = Engage(provider, held)
        assert held.reached.wait(HANG)
        wait_for(lambda: len(provider._market._candidates) == 1)
        second = Engage(provider, Permit())
        session = second.result()
        assert [a["state"] for a in daemon.agreements.values()] == ["Approved"]
        first.abort.set()
        held.wake()
        assert isinstance(first.result(), EngagementCancelled)
        session.release()
