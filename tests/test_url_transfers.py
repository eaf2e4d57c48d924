"""http(s) URL pass-through: data a user hosts goes to the provider (send_url) and results
go to a URL (upload_url, e.g. a pre-signed object-store URL) without passing through the
requestor, on every provider. The Golem provider's ExeScript for them is tested in
tests/yagna/test_golem_provider_activity.py."""

from __future__ import annotations

import http.server
import threading
from typing import Dict, Iterator, Tuple

import pytest

from golem_tasks import Batch, CommandExecutionError, Golem, LocalProvider, SendUrl, UploadUrl
from golem_tasks.testing import FakeProvider


class _Handler(http.server.BaseHTTPRequestHandler):
    files: Dict[str, bytes]
    puts: Dict[str, bytes]

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        self.puts[self.path] = self.rfile.read(length)
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[Tuple[str, Dict[str, bytes], Dict[str, bytes]]]:
    """A loopback web server: (base URL, files it serves, bodies it was PUT)."""
    files: Dict[str, bytes] = {}
    puts: Dict[str, bytes] = {}
    handler = type("Handler", (_Handler,), {"files": files, "puts": puts})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-web")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, puts
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def round_trip(ctx, base: str):
    batch = ctx.batch(timeout=30)
    batch.send_url(f"{base}/data/in.txt", "/golem/input/in.txt")
    # Paths as arguments: the host sandbox maps /golem arguments, not paths inside scripts.
    batch.run("/bin/sh", "-c", 'tr a-z A-Z < "$0" > "$1"', "/golem/input/in.txt", "/golem/output/out.txt")
    batch.upload_url("/golem/output/out.txt", f"{base}/bucket/out.txt?sig=1")
    yield batch
    return "done"


def test_local_provider_downloads_and_uploads_urls(web, tmp_path):
    base, files, puts = web
    files["/data/in.txt"] = b"hosted data\n"
    with Golem(LocalProvider(root=tmp_path, sandbox="host"), max_workers=1, progress=False) as golem:
        assert golem.run(round_trip, base) == "done"
    assert puts == {"/bucket/out.txt?sig=1": b"HOSTED DATA\n"}


def test_a_missing_url_fails_the_command_with_the_status(web, tmp_path):
    base, _, _ = web
    with LocalProvider(root=tmp_path, sandbox="host") as provider:
        session = provider.engage()
        try:
            with pytest.raises(CommandExecutionError, match=r"GET .*/nothing answered HTTP 404"):
                session.execute([SendUrl(f"{base}/nothing", "/golem/input/x")])
            with pytest.raises(CommandExecutionError, match="/golem/output/none does not exist"):
                session.execute([UploadUrl("/golem/output/none", f"{base}/bucket/x")])
        finally:
            session.release()


def test_an_unreachable_url_fails_the_command(tmp_path):
    import socket
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LocalProvider(root=tmp_path, sandbox="host") as provider:
        session = provider.engage()
        try:
            with pytest.raises(CommandExecutionError, match=f"GET http://127.0.0.1:{port}/x failed"):
                session.execute([SendUrl(f"http://127.0.0.1:{port}/x", "/golem/input/x")])
        finally:
            session.release()


def test_send_url_writes_only_where_sends_may(web, tmp_path):
    base, files, _ = web
    files["/f"] = b"x"
    with LocalProvider(root=tmp_path, sandbox="host") as provider:
        session = provider.engage()
        try:
            with pytest.raises(CommandExecutionError, match="files can only be sent into"):
                session.execute([SendUrl(f"{base}/f", "/etc/passwd")])
        finally:
            session.release()


def test_the_fake_serves_urls_and_records_uploads():
    provider = FakeProvider(urls={"https://data.example/in.txt": "hosted data\n"})
    provider.on_run("/bin/sh -c tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt",
                    files={"/golem/output/out.txt": "HOSTED DATA\n"})
    with provider, Golem(provider, max_workers=1, progress=False) as golem:
        def worker(ctx):
            batch = ctx.batch()
            batch.send_url("https://data.example/in.txt", "/golem/input/in.txt")
            batch.run("/bin/sh", "-c", "tr a-z A-Z < /golem/input/in.txt > /golem/output/out.txt")
            batch.upload_url("/golem/output/out.txt", "https://bucket.example/out.txt")
            yield batch
            return ctx.provider_id
        golem.run(worker)
    assert provider.uploads == {"https://bucket.example/out.txt": b"HOSTED DATA\n"}
    assert provider.sessions[0].read("/golem/input/in.txt") == b"hosted data\n"


def test_the_fake_fails_a_url_it_was_not_given():
    provider = FakeProvider(assert_all_used=False)
    with provider:
        session = provider.engage()
        with pytest.raises(CommandExecutionError, match=r"HTTP 404 .*FakeProvider\(urls="):
            session.execute([SendUrl("https://nowhere.example/x", "/golem/input/x")])
        session.release()


@pytest.mark.parametrize("url", ["ftp://host/x", "/local/path", "gftp://0xabc/1", ""])
def test_only_http_urls_are_accepted_when_the_batch_is_built(url):
    with pytest.raises(ValueError, match="must be an http\\(s\\) URL"):
        Batch().send_url(url, "/golem/input/x")
    with pytest.raises(ValueError, match="must be an http\\(s\\) URL"):
        Batch().upload_url("/golem/output/x", url)


def test_url_commands_name_their_ends():
    batch = Batch().send_url("https://h/in", "/golem/input/in").upload_url("/golem/output/o", "https://h/o")
    assert [c.describe() for c in batch.commands] == [
        "send url https://h/in -> /golem/input/in", "upload /golem/output/o -> url https://h/o"]
