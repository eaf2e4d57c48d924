"""The Golem provider's market and the provider record: providers that failed
repeatedly are refused with a reason, reliable ones are preferred."""

from __future__ import annotations

from golem_tasks import events as ev
from golem_tasks.provider_record import ProviderRecord
from golem_tasks.providers.yagna import CheapestFirst, OfferRejected
from golem_tasks.providers.yagna.market.filters import OfferFilter, PreferRecorded

from .golem_helpers import make_provider, node, of_type
from .test_golem_units import offer


def bad_record(path, provider_id: str) -> None:
    with ProviderRecord(path) as record:
        record(ev.ProviderEngaged(provider_id=provider_id, provider_name="flaky"))
        for index in range(4):
            record(ev.FragmentRetried(job_id=1, index=index, provider_id=provider_id, attempt=1,
                                      reason="ProviderLost: gone", delay=0))
        record(ev.JobFinished(job_id=1, done=0, failed=0, retried=4, elapsed=1.0))


def test_a_provider_with_a_bad_record_is_refused_and_another_engaged(daemon, events, tmp_path):
    path = tmp_path / "providers.sqlite"
    bad_record(path, node(2).id)
    with make_provider(events=events.append, provider_record=path) as provider:
        session = provider.engage()
        assert session.info.name == "provider-1"
        session.release()
    rejected = [e for e in of_type(events, OfferRejected) if e.provider_name == "provider-2"]
    assert rejected and rejected[0].reason.startswith("bad provider record: failed 4 of 4 fragments")


def test_the_default_record_lives_in_the_cache_directory_and_false_turns_it_off(daemon, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with make_provider() as provider:
        assert provider.provider_record is not None
        assert provider.provider_record.path == tmp_path / "golem_tasks" / "providers.sqlite"
    with make_provider(provider_record=False) as provider:
        assert provider.provider_record is None


def test_reliability_weighs_the_price():
    cheap = offer(coeffs=(0.0001, 0.0001, 0.0))
    base = CheapestFirst()
    assert PreferRecorded(base, lambda pid: 0.5)(cheap) == base(cheap) / 0.5
    assert PreferRecorded(base, lambda pid: 0.9)(cheap) > PreferRecorded(base, lambda pid: 0.5)(cheap)
    assert PreferRecorded(lambda p: 2.0, lambda pid: 0.5)(cheap) == 1.0


def test_the_filter_asks_the_record():
    assert OfferFilter(skip=lambda pid: "flaky").reject_reason(offer()) == "bad provider record: flaky"
    assert OfferFilter(skip=lambda pid: None).reject_reason(offer()) is None
