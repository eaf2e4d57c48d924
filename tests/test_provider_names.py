"""Choosing a provider by name (providers.from_name), as Golem(provider=...) does."""

from __future__ import annotations

import pytest

from golem_tasks import ConfigurationError, Golem, LocalProvider
from golem_tasks.providers import from_name
from golem_tasks.providers.yagna import GolemProvider
from golem_tasks.testing import FakeProvider


def test_the_default_is_the_local_provider_and_the_golem_closes_it():
    provider, owned = from_name(None)
    try:
        assert isinstance(provider, LocalProvider) and owned
    finally:
        provider.close()


def test_a_provider_instance_is_used_as_is_and_not_owned():
    fake = FakeProvider()
    assert from_name(fake) == (fake, False)
    with pytest.raises(ConfigurationError, match="configure the Provider instance itself"):
        from_name(fake, options={"latency": 1})


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigurationError, match="pass one of local, golem, fake"):
        Golem("gollum")


def test_provider_record_reaches_only_the_golem_provider(monkeypatch, tmp_path):
    built = {}

    def from_env(**options):
        built.update(options)
        return FakeProvider()  # stands in: the daemon is not needed to see the options

    monkeypatch.setattr(GolemProvider, "from_env", staticmethod(from_env))
    record = tmp_path / "providers.sqlite"
    golem = Golem("golem", image="golem/alpine:latest", provider_record=record, progress=False)
    golem.shutdown()
    assert built == {"image_tag": "golem/alpine:latest", "provider_record": record}
    # the local provider keeps no record: the option is not passed to it
    Golem("local", provider_record=False, progress=False).shutdown()
