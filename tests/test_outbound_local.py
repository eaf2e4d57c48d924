"""Outbound internet offline (issue 13 items 1-2): ``outbound=[...]`` on the local and
fake providers. Two HTTP servers on 127.0.0.1 play the internet: the one whose URL is
declared is reachable from a command, the other (another port) is refused with a 403
naming the manifest. In bwrap nothing else is reachable at all; on the host the proxy
variables are only advice, which a test states too."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from typing import Iterator, List

import pytest

from golem_tasks import Golem, LocalProvider
from golem_tasks.commands import Run
from golem_tasks.errors import ConfigurationError
from golem_tasks.providers._outbound_proxy import OutboundProxy
from golem_tasks.providers.outbound import DENIED, check_outbound, endpoint
from golem_tasks.testing import FakeProvider

from .test_local_provider import bwrap_problem
from .web import web_servers


@pytest.fixture
def internet() -> Iterator[List[int]]:
    """Two web servers on 127.0.0.1; their ports."""
    with web_servers(2) as ports:
        yield ports


def through(proxy: OutboundProxy, url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url, "https": proxy.url}))
    with opener.open(url, timeout=30) as answer:
        return answer.read().decode()


#: A command that fetches each URL with urllib (which honours http_proxy) and says what came.
FETCH = """
import sys, urllib.request, urllib.error
for url in sys.argv[1:]:
    try:
        print("OK", urllib.request.urlopen(url, timeout=30).read().decode())
    except urllib.error.HTTPError as exc:
        print("HTTP", exc.code, exc.read().decode().strip())
"""
#: A command that ignores the proxy and connects straight to a port.
DIRECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10).close()
    print("connected")
except OSError as exc:
    print("refused", exc)
"""


# -- the URL rules ------------------------------------------------------------------------

@pytest.mark.parametrize("url, expected", [
    ("https://pypi.org", ("pypi.org", 443)),
    ("http://Example.ORG/simple/", ("example.org", 80)),
    ("wss://127.0.0.1:8443/feed", ("127.0.0.1", 8443)),
    ("ws://[::1]/x", ("::1", 80)),
])
def test_a_url_grants_its_host_and_port(url, expected):
    assert endpoint(url) == expected


@pytest.mark.parametrize("bad", ["pypi.org", "ftp://example.org", "https://", "http://h:99999", "file:///etc"])
def test_a_bad_url_is_refused_with_the_argument_and_the_fix(bad):
    with pytest.raises(ConfigurationError) as caught:
        check_outbound([bad])
    message = str(caught.value)
    assert message.startswith(f"outbound lists {bad!r}") and "write it" in message and "like '" in message


def test_a_single_string_is_refused_with_the_list_it_should_be():
    with pytest.raises(ConfigurationError, match=r"outbound=\['https://pypi.org'\]"):
        check_outbound("https://pypi.org")


# -- the filtering proxy ------------------------------------------------------------------

def test_the_proxy_forwards_to_the_declared_host_and_refuses_another_port(internet):
    allowed, other = internet
    with OutboundProxy([f"http://127.0.0.1:{allowed}/anything"]) as proxy:
        assert through(proxy, f"http://127.0.0.1:{allowed}/data?x=1") == f"hello from {allowed} /data?x=1"
        with pytest.raises(urllib.error.HTTPError) as caught:
            through(proxy, f"http://127.0.0.1:{other}/")
        assert caught.value.code == 403
        body = caught.value.read().decode()
        assert body.startswith(DENIED) and f"127.0.0.1:{other}" in body and "outbound=" in body
        assert proxy.denied == [("127.0.0.1", other)]


def test_a_refused_tunnel_says_why_in_its_status_line(internet):
    allowed, other = internet
    with OutboundProxy([f"https://127.0.0.1:{allowed}"]) as proxy:
        with pytest.raises(urllib.error.URLError) as caught:
            through(proxy, f"https://127.0.0.1:{other}/")
        assert "403 Blocked by the computation payload manifest" in str(caught.value)
        # An allowed CONNECT opens a raw tunnel (here to a plain HTTP server).
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as tunnel:
            tunnel.sendall(f"CONNECT 127.0.0.1:{allowed} HTTP/1.1\r\n\r\n".encode())
            assert tunnel.recv(100).startswith(b"HTTP/1.1 200")
            tunnel.sendall(b"GET /tunnelled HTTP/1.0\r\n\r\n")
            answer = b""
            while chunk := tunnel.recv(4096):
                answer += chunk
        assert answer.endswith(f"hello from {allowed} /tunnelled".encode())


# -- the local provider -------------------------------------------------------------------

def test_outbound_and_the_whole_network_are_not_given_together():
    with pytest.raises(ConfigurationError, match="network=True"):
        LocalProvider(sandbox="host", network=True, outbound=["https://pypi.org"])
    with pytest.raises(ConfigurationError, match="outbound"):
        LocalProvider(sandbox="host", outbound=["pypi.org"])


def run(provider: LocalProvider, *commands: Run) -> List[str]:
    session = provider.engage()
    try:
        return [r.stdout for r in session.execute(list(commands), timeout=120)]
    finally:
        session.release()


def test_in_bwrap_a_command_reaches_the_declared_host_and_nothing_else(internet):
    if bwrap_problem():
        pytest.skip(f"bwrap sandbox unavailable: {bwrap_problem()}")
    allowed, other = internet
    with LocalProvider(sandbox="bwrap", outbound=[f"http://127.0.0.1:{allowed}"]) as provider:
        fetched, direct = run(provider, Run(("python3", "-c", FETCH, f"http://127.0.0.1:{allowed}/a",
                                             f"http://127.0.0.1:{other}/b")),
                              Run(("python3", "-c", DIRECT, str(other))))
    ok, refused = fetched.splitlines()
    assert ok == f"OK hello from {allowed} /a"
    assert refused.startswith(f"HTTP 403 {DENIED}: 127.0.0.1:{other}")
    assert direct.startswith("refused")  # the sandbox has no network but the proxy


def test_on_the_host_the_proxy_refuses_but_cannot_stop_a_direct_connection(internet):
    allowed, other = internet
    with LocalProvider(sandbox="host", outbound=[f"http://127.0.0.1:{allowed}"]) as provider:
        fetched, direct = run(provider, Run(("python3", "-c", FETCH, f"http://127.0.0.1:{allowed}/a",
                                             f"http://127.0.0.1:{other}/b")),
                              Run(("python3", "-c", DIRECT, str(other))))
    assert fetched.splitlines()[0] == f"OK hello from {allowed} /a"
    assert fetched.splitlines()[1].startswith(f"HTTP 403 {DENIED}")
    assert direct.startswith("connected")  # documented: advice only on the host


def test_golem_takes_outbound_as_a_provider_option(internet):
    allowed, other = internet

    def fetch(ctx, port):
        results = yield ctx.run("python3", "-c", FETCH, f"http://127.0.0.1:{port}/job")
        return results[0].stdout.strip()

    with Golem("local", provider_options={"outbound": [f"http://127.0.0.1:{allowed}"]}, max_workers=1,
               progress=False) as golem:
        answers = list(golem.map(fetch, [allowed, other]))
        assert answers[0] == f"OK hello from {allowed} /job"
        assert answers[1].startswith("HTTP 403") and "outbound=" in answers[1]


def test_the_fake_provider_checks_and_records_outbound():
    fake = FakeProvider(outbound=["https://pypi.org"], assert_all_used=False)
    with fake:
        session = fake.engage()
        assert session.info.properties["outbound"] == ("https://pypi.org",)
        session.release()
    with pytest.raises(ConfigurationError, match="outbound"):
        FakeProvider(outbound=["pypi.org"])


def test_in_an_image_the_forwarder_reaches_the_proxy_after_the_chroot(internet, tmp_path):
    from .test_local_vm import make_rootfs
    if bwrap_problem():
        pytest.skip(f"bwrap sandbox unavailable: {bwrap_problem()}")
    rootfs = make_rootfs(tmp_path / "rootfs")
    (rootfs / "bin" / "wget").symlink_to("busybox")  # busybox wget honours http_proxy
    allowed, other = internet
    with LocalProvider(tmp_path / "root", sandbox="bwrap", image=rootfs,
                       outbound=[f"http://127.0.0.1:{allowed}"]) as provider:
        session = provider.engage()
        ok, refused = session.execute([Run(("wget", "-q", "-O", "-", f"http://127.0.0.1:{allowed}/img")),
                                       Run(("wget", "-O", "-", f"http://127.0.0.1:{other}/"), check=False)],
                                      timeout=60)
        session.release()
    assert ok.stdout == f"hello from {allowed} /img"
    assert refused.exit_code != 0 and "403" in refused.stderr
