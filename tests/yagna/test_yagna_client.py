"""YagnaClient itself: identity, version, health check, configuration, GSB binding."""

import pytest
from responses import matchers

from golem_tasks.errors import ConfigurationError
from golem_tasks.providers.yagna import AppKeyRefused, NotYagna
from golem_tasks.providers.yagna._client import GsbServices, Identity, YagnaClient, YagnaVersion

from .yagna_samples import API_URL, APP_KEY, GSB, NODE

VERSION = {"current": {"version": "0.17.6", "name": "v0.17.6", "seen": False,
                       "releaseTs": "2025-10-04T10:00:00", "insertionTs": "2025-10-04T10:00:00",
                       "updateTs": "2025-10-04T10:00:00"},
           "pending": None}
ME = {"identity": NODE, "name": "requestor", "role": "manager"}


def test_me_sends_the_key_as_bearer(client, rsps):
    rsps.get(API_URL + "/me", json=ME,
             match=[matchers.header_matcher({"Authorization": f"Bearer {APP_KEY}", "Accept": "application/json"})])
    assert client.me() == Identity(identity=NODE, name="requestor", role="manager")


def test_version(client, rsps):
    rsps.get(API_URL + "/version/get", json=VERSION)
    version = client.version()
    assert version == YagnaVersion(version="0.17.6", name="v0.17.6")
    assert version.version_tuple == (0, 17, 6)


def test_version_tuple_stops_at_a_suffix():
    assert YagnaVersion(version="0.18.0-rc2", name="x").version_tuple == (0, 18, 0)


def test_check_asks_version_then_identity(client, rsps):
    rsps.get(API_URL + "/version/get", json=VERSION)
    rsps.get(API_URL + "/me", json=ME)
    assert client.check().identity == NODE
    assert [call.request.path_url for call in rsps.calls] == ["/version/get", "/me"]


def test_check_reports_a_refused_key(client, rsps):
    rsps.get(API_URL + "/version/get", json=VERSION)
    rsps.get(API_URL + "/me", status=401, body="Invalid application key", content_type="text/plain")
    with pytest.raises(AppKeyRefused, match="yagna app-key create requestor"):
        client.check()


@pytest.mark.not_yagna
def test_check_reports_a_server_that_is_not_yagna(client, rsps):
    rsps.get(API_URL + "/version/get", json={"status": "ok", "version": 3})
    with pytest.raises(NotYagna, match="not a yagna daemon"):
        client.check()


def test_from_env_reads_the_variables(session, monkeypatch):
    monkeypatch.setenv("YAGNA_APPKEY", APP_KEY)
    monkeypatch.setenv("YAGNA_API_URL", "http://10.0.0.5:7465/")
    client = YagnaClient.from_env(session)
    assert client.api_url == "http://10.0.0.5:7465"
    assert client.auth_header() == {"Authorization": f"Bearer {APP_KEY}"}


def test_from_env_prefers_arguments_and_defaults_the_url(session):
    client = YagnaClient.from_env(session, app_key="abc", environ={"YAGNA_APPKEY": "zzz"})
    assert client.api_url == "http://127.0.0.1:7465"
    assert client.auth_header()["Authorization"] == "Bearer abc"


def test_from_env_without_a_key_says_how_to_get_one(session):
    with pytest.raises(ConfigurationError, match="yagna app-key create requestor"):
        YagnaClient.from_env(session)


@pytest.mark.parametrize("url", ["127.0.0.1:7465", "ftp://x", "", None])
def test_bad_urls_are_refused_at_once(session, url):
    with pytest.raises(ConfigurationError, match="api_url"):
        YagnaClient(session, url, APP_KEY)


@pytest.mark.parametrize("key", ["", "  ", "two words", None])
def test_bad_keys_are_refused_at_once(session, key):
    with pytest.raises(ConfigurationError, match="app key"):
        YagnaClient(session, API_URL, key)


def test_the_key_never_shows(session, client):
    assert APP_KEY not in repr(client)
    assert APP_KEY not in str(client)
    assert APP_KEY not in repr(client._t) + repr(client._t._key) + str(client._t._key)
    assert APP_KEY not in repr(vars(client)) + repr(vars(client._t))


def test_bind_and_unbind_gsb_services(client, rsps):
    listen = {"on": "/public/gftp/u-1", "components": ["GetMetadata", "GetChunk"]}
    rsps.post(GSB + "/services", status=201, json={"servicesId": "c2VydmljZQ", "listen": listen},
              match=[matchers.json_params_matcher({"listen": listen})])
    rsps.delete(GSB + "/services/c2VydmljZQ", status=200)
    services = client.gsb.bind_services("/public/gftp/u-1", ["GetMetadata", "GetChunk"])
    assert services == GsbServices(services_id="c2VydmljZQ", on="/public/gftp/u-1",
                                   components=("GetMetadata", "GetChunk"))
    client.gsb.unbind_services(services.services_id)


def test_gsb_websocket_url_has_no_key(session):
    plain = YagnaClient(session, "http://127.0.0.1:7465", APP_KEY)
    secure = YagnaClient(session, "https://yagna.example/", APP_KEY)
    assert plain.gsb.websocket_url("a/b") == "ws://127.0.0.1:7465/gsb-api/v1/services/a%2Fb"
    assert secure.gsb.websocket_url("x") == "wss://yagna.example/gsb-api/v1/services/x"
