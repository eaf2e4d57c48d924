"""GsbGftpStorage closing and failing cleanly: unbinding, sockets, threads, errors, the
app key, and the GolemProvider storage seam. Against the fake daemon of gsb_daemon.py."""

from __future__ import annotations

import logging
import socket
import time

import pytest
import requests

from golem_tasks.errors import ApiError, CommandExecutionError, ProviderError
from golem_tasks.providers.yagna import AppKeyRefused, NotFound, YagnaUnreachable
from golem_tasks.providers.yagna._client import GsbServices, YagnaClient
from golem_tasks.providers.yagna.transfer import storage as _storage
from golem_tasks.providers.yagna.transfer.gftp import GsbGftpStorage, TransferFailed
from golem_tasks.providers.yagna.transfer.gsb_ws import BoundService

from .gftp_helpers import OK, fetch, gftp_threads, push, sha3
from .gsb_daemon import CallFailed, FakeGsbDaemon
from .yagna_samples import APP_KEY, NODE


@pytest.fixture
def daemon():
    with FakeGsbDaemon(APP_KEY, NODE) as fake:
        yield fake


@pytest.fixture
def client(daemon):
    with requests.Session() as session:
        yield YagnaClient(session, daemon.url, APP_KEY)


@pytest.fixture
def storage(client):
    with GsbGftpStorage(client) as storage:
        yield storage


# -- closing ------------------------------------------------------------------------


def test_release_unbinds_closes_the_socket_and_ends_the_thread(daemon, storage):
    url = storage.publish(b"abc").url
    download = storage.receive()
    assert len(gftp_threads()) == 2
    storage.release(url)
    storage.release(download.url)
    storage.release(download.url)  # twice is harmless
    assert daemon.bound() == []
    deletes = [r for r in daemon.rest if r[0] == "DELETE"]
    assert [status for _, _, status in deletes] == [200, 200]
    assert gftp_threads() == []
    assert storage.urls() == []
    with pytest.raises(TransferFailed, match="released before it finished"):
        download.result()
    with pytest.raises(CallFailed, match="endpoint address not found"):
        daemon.call(url, "GetMetadata")


def test_close_releases_everything_fast_though_the_daemon_never_answers_a_close(daemon, client):
    storage = GsbGftpStorage(client)
    for i in range(10):
        storage.publish(b"x" * i)
        storage.receive()
    assert len(daemon.bound()) == 20
    storage.close()  # the fake never answers a close: how fast it still is, bench_latency.py
    assert daemon.bound() == [] and gftp_threads() == []
    with pytest.raises(ProviderError, match="closed"):
        storage.publish(b"late")
    storage.close()


def test_release_ends_the_socket_itself_when_the_daemon_does_not(daemon, storage):
    daemon.close_on_unbind = False
    urls = [storage.publish(b"abc").url for _ in range(3)]
    for url in urls:
        storage.release(url)
    assert gftp_threads() == [] and daemon.bound() == []
    deadline = time.monotonic() + 30  # a hang guard: the fake reads them on its own threads
    while len(daemon.closes_received) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(daemon.closes_received) == 3  # a polite close frame went out all the same


def test_the_node_id_is_asked_once(daemon, storage):
    storage.publish(b"a")
    storage.publish(b"b")
    assert [r for r in daemon.rest if r[1] == "/me"] == [("GET", "/me", 200)]
    assert GsbGftpStorage(None, node_id="0xabc").node_id == "0xabc"


# -- errors -------------------------------------------------------------------------


class StubGsb:
    """A GsbApi that binds nothing and sends the WebSocket where a test wants."""

    def __init__(self, ws_url):
        self.ws_url = ws_url
        self.unbound = []

    def bind_services(self, on, components):
        return GsbServices(services_id="c2lk", on=on, components=components)

    def websocket_url(self, services_id):
        return self.ws_url

    def unbind_services(self, services_id):
        self.unbound.append(services_id)


def test_a_refused_app_key_on_the_socket_is_app_key_refused_and_unbinds(daemon, client):
    service = BoundService(client.gsb, {"Authorization": "Bearer wrong"}, "/public/gftp/k1",
                           ["GetMetadata"], lambda c, p: None)
    with pytest.raises(AppKeyRefused, match="401") as caught:
        service.start()
    assert caught.value.status == 401
    assert daemon.bound() == []  # bound first, then unbound when the socket failed


def test_an_unknown_services_id_is_not_found(daemon):
    gsb = StubGsb(daemon.url.replace("http", "ws") + "/gsb-api/v1/services/bm9uZQ")
    service = BoundService(gsb, {"Authorization": f"Bearer {APP_KEY}"}, "/public/gftp/x", ["GetChunk"],
                           lambda c, p: None)
    with pytest.raises(NotFound) as caught:
        service.start()
    assert caught.value.status == 404 and gsb.unbound == ["c2lk"]


def test_no_daemon_is_yagna_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gsb = StubGsb(f"ws://127.0.0.1:{port}/gsb-api/v1/services/c2lk")
    service = BoundService(gsb, {}, "/public/gftp/x", ["GetChunk"], lambda c, p: None)
    with pytest.raises(YagnaUnreachable, match="yagna service run"):
        service.start()
    assert gsb.unbound == ["c2lk"]


def test_a_refused_binding_is_an_api_error_and_leaves_no_thread(daemon, client):
    service = BoundService(client.gsb, client.auth_header(), "/public/gftp/dup", ["GetChunk"],
                           lambda c, p: None).start()
    try:
        with pytest.raises(ApiError) as caught:
            BoundService(client.gsb, client.auth_header(), "/public/gftp/dup", ["GetChunk"],
                         lambda c, p: None).start()
        assert caught.value.status == 400
    finally:
        service.close()
    assert gftp_threads() == []


def test_the_app_key_never_shows_in_logs_errors_or_reprs(daemon, client, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)  # every logger, websocket-client's included
    seen = []
    with GsbGftpStorage(client) as storage:
        path = tmp_path / "in.bin"
        path.write_bytes(b"data" * 1000)
        url = storage.publish(path).url
        fetch(daemon, url)
        download = storage.receive()
        push(daemon, download.url, b"result")
        push(daemon, storage.receive().url, b"bad", digest=sha3(b"good"))
        seen += [repr(storage), repr(download), url, download.url]
        for bad in (BoundService(client.gsb, {"Authorization": "Bearer wrong"}, "/public/gftp/k2",
                                 ["GetChunk"], lambda c, p: None),):
            with pytest.raises(ApiError) as caught:
                bad.start()
            seen += [str(caught.value), repr(caught.value)]
    seen.append(caplog.text)
    assert "gftp" in caplog.text  # the logs were captured at all
    assert not [text for text in seen if APP_KEY in text]


def test_nothing_is_left_when_connecting_fails(daemon, client, monkeypatch, tmp_path):
    import websocket

    def refuse(*args, **kwargs):
        raise websocket.WebSocketTimeoutException("timed out")

    monkeypatch.setattr(websocket, "create_connection", refuse)
    with GsbGftpStorage(client) as storage, pytest.raises(ApiError, match="no upgrade within"):
        storage.receive(tmp_path / "never")
    assert daemon.bound() == [] and gftp_threads() == []
    assert list(tmp_path.iterdir()) == []  # no .part file either


def test_a_reply_over_the_frame_limit_becomes_an_error_reply(daemon, client):
    answers = {"Small": b"s" * 100, "Huge": b"h" * 70_000}
    service = BoundService(client.gsb, client.auth_header(), "/public/test/frames", sorted(answers),
                           lambda component, payload: {"content": answers[component]}).start()
    try:
        huge = daemon.call("/public/test/frames", "Huge")
        assert "the daemon takes at most 65536" in huge["Err"]["InternalError"]
        assert daemon.call("/public/test/frames", "Small") == {"Ok": {"content": answers["Small"]}}
    finally:
        service.close()


def test_a_handler_bug_is_an_internal_error_reply_and_the_service_goes_on(daemon, client, caplog):
    calls = []

    def handler(component, payload):
        calls.append(component)
        if len(calls) == 1:
            raise KeyError("bug")
        return "fine"

    service = BoundService(client.gsb, client.auth_header(), "/public/test/bug", ["Do"], handler).start()
    try:
        assert daemon.call("/public/test/bug", "Do") == {"Err": {"InternalError": "Do failed: KeyError"}}
        assert daemon.call("/public/test/bug", "Do") == {"Ok": "fine"}
    finally:
        service.close()
    assert "Do failed" in caplog.text


# -- the storage seam ---------------------------------------------------------------


def test_it_plugs_into_the_golem_provider_storage_seam(daemon, storage, tmp_path):
    (tmp_path / "in.txt").write_bytes(b"from a str path")
    upload = storage.publish(str(tmp_path / "in.txt"))
    download = storage.receive(tmp_path / "out.txt")
    assert isinstance(storage, _storage.Storage)
    assert isinstance(upload, _storage.Upload) and isinstance(download, _storage.Download)
    assert upload.size == 15 and fetch(daemon, upload.url) == b"from a str path"
    assert push(daemon, download.url, b"back") == OK
    assert download.result(timeout=1) == tmp_path / "out.txt"
    upload.close()
    download.close()
    download.close()
    assert daemon.bound() == [] and storage.urls() == []
    assert issubclass(TransferFailed, CommandExecutionError)  # what the seam's result() raises


def test_the_socket_ignores_proxies_from_the_environment_like_the_rest_session(daemon, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with requests.Session() as session:
        session.trust_env = False  # as GolemProvider's connection does
        with GsbGftpStorage(YagnaClient(session, daemon.url, APP_KEY)) as storage:
            assert fetch(daemon, storage.publish(b"direct").url) == b"direct"
