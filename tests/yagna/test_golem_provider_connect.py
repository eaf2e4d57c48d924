"""GolemProvider set-up: configuration, the daemon check, the image registry. Every
failure here must come before anything is reserved or spent, and say what to do."""

import re
import socket
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
import responses

from golem_tasks.errors import ConfigurationError, ProviderError
from golem_tasks.providers.yagna import AppKeyRefused, GolemProvider, NotYagna, VmPayload, YagnaUnreachable

from .golem_helpers import FAST, assert_key_hidden, make_provider
from .own_mock import OwnHostsMock
from .yagna_samples import API_URL, APP_KEY, IMAGE_HASH, IMAGE_URL, NODE

REGISTRY = "http://127.0.0.1:8765"


def test_no_app_key_says_how_to_get_one(daemon_mock):
    with pytest.raises(ConfigurationError, match="yagna app-key create requestor"):
        GolemProvider(image_hash=IMAGE_HASH, image_url=IMAGE_URL, api_url=API_URL)
    assert len(daemon_mock.calls) == 0


def test_key_and_url_come_from_the_environment_when_built(daemon, monkeypatch):
    monkeypatch.setenv("YAGNA_APPKEY", APP_KEY)
    monkeypatch.setenv("YAGNA_API_URL", API_URL)
    with GolemProvider(image_hash=IMAGE_HASH, image_url=IMAGE_URL, timeouts=FAST) as provider:
        assert provider.identity.identity == NODE
    assert daemon.count("GET /me") == 1


def test_a_refused_key_fails_before_anything_is_spent(daemon, caplog):
    daemon.fail("GET", r"^/me$", 401, body="Invalid application key")
    with pytest.raises(AppKeyRefused, match="yagna app-key create requestor") as info:
        make_provider()
    assert daemon.allocations == {}
    assert_key_hidden(caplog, str(info.value), repr(info.value))


def test_no_daemon_is_reported_within_seconds():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(YagnaUnreachable, match="yagna service run"):  # how soon: bench_latency.py
        GolemProvider(image_hash=IMAGE_HASH, image_url=IMAGE_URL, app_key=APP_KEY,
                      api_url=f"http://127.0.0.1:{port}")


def test_something_else_at_the_url_is_not_yagna():
    with OwnHostsMock() as rsps:
        rsps.get(API_URL + "/version/get", body="<html>router login</html>", content_type="text/html")
        with pytest.raises(NotYagna, match="not a yagna daemon"):
            make_provider()


def test_a_web_server_without_the_yagna_api_is_not_yagna():
    with OwnHostsMock() as rsps:
        rsps.get(API_URL + "/version/get", status=404, body="<html>Not Found</html>", content_type="text/html")
        with pytest.raises(NotYagna, match="no /version/get .* check YAGNA_API_URL"):
            make_provider()


def test_an_image_tag_is_resolved_in_the_registry(daemon, daemon_mock):
    daemon_mock.get(REGISTRY + "/v1/image/info", json={"http": IMAGE_URL, "https": "https://x/i.gvmi",
                                                "sha3": IMAGE_HASH, "size": 1234},
             match=[responses.matchers.query_param_matcher({"tag": "golem/alpine:latest", "count": "true"})])
    with make_provider(image_hash=None, image_url=None, image_tag="golem/alpine:latest",
                       registry_url=REGISTRY) as provider:
        assert provider.payload.task_package == f"hash:sha3:{IMAGE_HASH}:{IMAGE_URL}"
    registry_call = next(c for c in daemon_mock.calls if c.request.url.startswith(REGISTRY))
    assert "Authorization" not in registry_call.request.headers


def test_an_unknown_tag_fails_before_anything_is_spent(daemon, daemon_mock):
    daemon_mock.get(REGISTRY + "/v1/image/info", status=404, body="image not found")
    with pytest.raises(ConfigurationError, match="does not know image tag 'golem/nope:1'"):
        make_provider(image_hash=None, image_url=None, image_tag="golem/nope:1", registry_url=REGISTRY)
    assert daemon.count("POST /payment-api/v1/allocations") == 0


def test_an_unreachable_registry_is_a_provider_error(daemon, daemon_mock):
    daemon_mock.get(REGISTRY + "/v1/image/info", body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(ProviderError, match="cannot ask the image registry"):
        make_provider(image_hash=None, image_url=None, image_tag="golem/alpine:latest", registry_url=REGISTRY)


@pytest.mark.parametrize("options, message", [
    (dict(budget=0.5), "not the float"),
    (dict(budget="-1"), "budget must be positive"),
    (dict(expiration=timedelta(minutes=45), debit_note_accept_timeout=None), "more needs debit_note_accept"),
    (dict(expiration=timedelta(minutes=2)), "5 min to"),
    (dict(debit_note_accept_timeout=600), "5-240"),
    (dict(image_hash=None), "image_url needs image_hash"),
    (dict(image_url=None, image_hash=None), "say which VM image"),
    (dict(subnet_tag="pub lic"), "plain name"),
    (dict(max_cpu_hour_price=0.1), "not the float"),
    (dict(allow_providers=[3]), "matched by id, name or re.compile"),
    (dict(payment_network="holesky", mainnet=True), "test network"),
    (dict(network="goerli"), r"unknown payment network 'goerli': use one of hoodi \(tGLM\), holesky"),
    (dict(network="Polygon"), "lowercase"),
    (dict(network="hoodi", payment_network="amoy"), "disagree"),
    (dict(inline_limit=10**7), "inline_limit"),
])
def test_bad_arguments_fail_before_the_daemon_is_asked(daemon_mock, options, message):
    with pytest.raises(ConfigurationError, match=message):
        make_provider(**options)
    assert len(daemon_mock.calls) == 0


def test_one_argument_switches_to_mainnet(daemon):
    with make_provider(mainnet=True) as provider:
        assert provider.platform == "erc20-polygon-glm"
    with make_provider() as provider:
        assert provider.platform == "erc20-hoodi-tglm"  # the default testnet
    with make_provider(network="holesky") as provider:
        assert provider.platform == "erc20-holesky-tglm"
    with make_provider(network="amoy") as provider:
        assert provider.platform == "erc20-amoy-tglm"


def test_from_env_reads_image_budget_and_network(daemon, monkeypatch):
    monkeypatch.setenv("YAGNA_APPKEY", APP_KEY)
    monkeypatch.setenv("GOLEM_TASKS_BUDGET", "2.5")
    monkeypatch.setenv("YAGNA_PAYMENT_NETWORK", "polygon")
    payload = VmPayload(image_hash=IMAGE_HASH, image_url=IMAGE_URL)
    with GolemProvider.from_env(api_url=API_URL, payload=payload, timeouts=FAST) as provider:
        assert provider.budget == Decimal("2.5") and provider.platform == "erc20-polygon-glm"
    with pytest.raises(ConfigurationError, match="GOLEM_TASKS_IMAGE"):
        GolemProvider.from_env()


def test_the_key_never_shows(daemon, caplog):
    caplog.set_level("DEBUG")
    with make_provider() as provider:
        session = provider.engage()
        texts = [repr(provider), repr(session), repr(provider._connection), repr(provider.client),
                 str(vars(provider)), str(vars(session))]
        session.release()
    assert_key_hidden(caplog, *texts)
    assert any(re.search("allocated", record.getMessage()) for record in caplog.records)
