"""GsbGftpStorage moving data, against a fake daemon on 127.0.0.1 (gsb_daemon.py) that
calls it as a provider's exe-unit does: 40 KiB chunks, 8 in flight, uploads in any order."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from flatbuffers import flexbuffers

from golem_tasks.providers.yagna._client import YagnaClient
from golem_tasks.providers.yagna.transfer.gftp import MAX_CHUNK, GsbGftpStorage, TransferFailed

from .gftp_helpers import CHUNK, OK, data_of, fetch, gftp_threads, push, sha3
from .gsb_daemon import CallFailed, FakeGsbDaemon, encode_request
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


# -- publishing ---------------------------------------------------------------------


def test_publish_binds_a_gftp_address_and_connects_with_the_key_in_a_header(daemon, storage):
    url = storage.publish(b"hello").url
    match = re.fullmatch(rf"gftp://{NODE}/([0-9a-f]{{32}})", url)
    assert match, url
    assert daemon.bound() == [f"/public/gftp/{match.group(1)}"]
    assert daemon.services[daemon.services_id(f"/public/gftp/{match.group(1)}")].components == [
        "GetMetadata", "GetChunk"]
    [(path, headers)] = daemon.upgrades
    assert path == f"/gsb-api/v1/services/{daemon.services_id('/public/gftp/' + match.group(1))}"
    assert headers["Authorization"] == f"Bearer {APP_KEY}"
    assert headers["Sec-WebSocket-Protocol"] == "gsb+flexbuffers"
    assert daemon.connected(f"/public/gftp/{match.group(1)}")


@pytest.mark.parametrize("size", [0, 1, CHUNK, 3 * CHUNK + 7, 2_500_000])
def test_a_published_file_reassembles_byte_exact(daemon, storage, tmp_path, size):
    data = data_of(size, seed=size)
    path = tmp_path / "in.bin"
    path.write_bytes(data)
    url = storage.publish(path).url
    assert daemon.call(url, "GetMetadata") == {"Ok": {"fileSize": size}}
    assert fetch(daemon, url) == data


def test_published_bytes_reassemble_byte_exact(daemon, storage):
    data = data_of(1_300_000, seed=3)
    assert fetch(daemon, storage.publish(data).url) == data


def test_several_transfers_run_concurrently(daemon, storage, tmp_path):
    files = []
    for i in range(4):
        path = tmp_path / f"in{i}.bin"
        path.write_bytes(data_of(1_100_000 + i, seed=10 + i))
        files.append(path)
    urls = [storage.publish(p).url for p in files]
    uploads = [data_of(1_050_000 + i, seed=20 + i) for i in range(4)]
    downloads = [storage.receive() for _ in uploads]
    with ThreadPoolExecutor(8) as pool:
        fetched = [pool.submit(fetch, daemon, url, 4) for url in urls]
        pushed = [pool.submit(push, daemon, d.url, u, seed=i, concurrency=4)
                  for i, (d, u) in enumerate(zip(downloads, uploads))]
        assert [f.result() for f in fetched] == [p.read_bytes() for p in files]
        assert [p.result() for p in pushed] == [OK] * 4
    assert [d.result() for d in downloads] == uploads
    assert len(gftp_threads()) == 8


def test_get_chunk_edges(daemon, storage):
    url = storage.publish(b"0123456789").url
    assert daemon.call(url, "GetChunk", {"offset": 8, "size": CHUNK}) == {
        "Ok": {"offset": 8, "content": b"89"}}
    assert daemon.call(url, "GetChunk", {"offset": 10, "size": CHUNK}) == {
        "Ok": {"offset": 10, "content": b""}}
    past = daemon.call(url, "GetChunk", {"offset": 11, "size": CHUNK})
    assert "past the end" in past["Err"]["ReadError"]
    assert "offset" in daemon.call(url, "GetChunk", {"size": CHUNK})["Err"]["InternalError"]


def test_chunks_never_exceed_the_daemons_frame_limit(daemon, storage):
    data = data_of(3 * MAX_CHUNK, seed=5)
    url = storage.publish(data).url
    # The fake, like yagna, closes the socket on a frame over 64 KiB: this one passes ...
    assert daemon.call(url, "GetChunk", {"offset": 0, "size": MAX_CHUNK})["Ok"]["content"] == data[:MAX_CHUNK]
    # ... and a larger request is refused with an error instead of a frame yagna drops.
    refused = daemon.call(url, "GetChunk", {"offset": 0, "size": 2 * MAX_CHUNK})
    assert "at most" in refused["Err"]["InternalError"]
    assert fetch(daemon, url) == data  # the socket is still fine


def test_a_request_for_another_component_gets_an_error_reply(daemon, storage):
    url = storage.publish(b"abc").url
    on = "/public/gftp/" + url.rsplit("/", 1)[1]
    reply = daemon.call_raw(on, "GetChunk", lambda rid: encode_request(
        rid, "UploadChunk", {"chunk": {"offset": 0, "content": b"x"}}))
    assert "UploadChunk is not served" in reply["Err"]["InternalError"]


def test_malformed_requests(daemon, storage, caplog):
    url = storage.publish(b"abc").url
    on = "/public/gftp/" + url.rsplit("/", 1)[1]
    reply = daemon.call_raw(on, "GetChunk", lambda rid: bytes(flexbuffers.Dumps({"id": rid})))
    assert "malformed request: no component" in reply["Err"]["InternalError"]
    with pytest.raises(CallFailed, match="no reply"):  # no id: nothing to answer
        daemon.call_raw(on, "GetChunk", lambda rid: b"\x01\x02\x03", timeout=0.3)
    assert "malformed request" in caplog.text
    assert daemon.call(url, "GetMetadata") == {"Ok": {"fileSize": 3}}


def test_publishing_a_missing_file_raises_oserror_and_binds_nothing(daemon, storage, tmp_path):
    with pytest.raises(FileNotFoundError):
        storage.publish(tmp_path / "nope")
    assert daemon.bound() == []


# -- receiving ----------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 8])
def test_out_of_order_chunks_are_written_at_their_offsets_in_memory(daemon, storage, concurrency):
    data = data_of(1_300_000, seed=concurrency)
    download = storage.receive()
    assert not download.done
    assert push(daemon, download.url, data, concurrency=concurrency) == OK
    assert download.done and download.result() == data


def test_out_of_order_chunks_are_written_at_their_offsets_in_a_file(daemon, storage, tmp_path):
    data = data_of(2_000_000, seed=7)
    target = tmp_path / "deep" / "er" / "out.bin"
    download = storage.receive(target)
    assert download.path == target
    first = data[CHUNK:2 * CHUNK]
    assert daemon.call(download.url, "UploadChunk", {"chunk": {"offset": CHUNK, "content": first}}) == OK
    assert not target.exists()  # a partial file never sits at the destination
    assert push(daemon, download.url, data) == OK
    assert download.result() == target
    assert target.read_bytes() == data
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_an_upload_without_hash_is_accepted(daemon, storage):
    download = storage.receive()
    assert push(daemon, download.url, b"no hash here", digest=None) == OK
    assert download.result() == b"no hash here"


def test_a_corrupted_upload_fails_the_transfer(daemon, storage, tmp_path):
    download = storage.receive(tmp_path / "out.bin")
    assert push(daemon, download.url, b"payload", digest=sha3(b"other")) == {"Err": "IntegrityError"}
    with pytest.raises(TransferFailed, match="corrupted"):
        download.result()
    assert not (tmp_path / "out.bin").exists()
    # Failures are final: the exe-unit does not retry after a gftp error.
    late = daemon.call(download.url, "UploadChunk", {"chunk": {"offset": 0, "content": b"x"}})
    assert "already failed" in late["Err"]["WriteError"]
    storage.release(download.url)
    assert list(tmp_path.iterdir()) == []  # the .part file went with the release


def test_a_missing_chunk_fails_the_transfer(daemon, storage):
    download = storage.receive()
    for offset, content in [(0, b"abc"), (6, b"ghi")]:
        daemon.call(download.url, "UploadChunk", {"chunk": {"offset": offset, "content": content}})
    assert daemon.call(download.url, "UploadFinished", {"hash": None}) == {"Err": "IntegrityError"}
    with pytest.raises(TransferFailed, match="bytes 3-6 never arrived"):
        download.result()


def test_a_download_over_its_limit_is_refused(daemon, storage):
    download = storage.receive(limit=100)
    assert daemon.call(download.url, "UploadChunk", {"chunk": {"offset": 0, "content": b"x" * 100}}) == OK
    over = daemon.call(download.url, "UploadChunk", {"chunk": {"offset": 100, "content": b"y"}})
    assert "limit of 100 bytes" in over["Err"]["WriteError"]
    with pytest.raises(TransferFailed, match="limit"):
        download.result()


def test_a_repeated_transfer_after_success_is_checked_against_the_first(daemon, storage):
    download = storage.receive()
    assert push(daemon, download.url, b"same") == OK
    assert push(daemon, download.url, b"same") == OK  # the exe-unit retried a lost reply
    assert daemon.call(download.url, "UploadFinished", {"hash": sha3(b"else")}) == {"Err": "IntegrityError"}
    assert download.result() == b"same"


def test_result_before_the_upload_finished_times_out(storage):
    download = storage.receive()
    with pytest.raises(TransferFailed, match="did not finish within 0.1 s"):
        download.result(timeout=0.1)
    assert not download.wait(0.01)


def test_a_socket_the_daemon_drops_fails_the_pending_download(daemon, storage):
    download = storage.receive()
    daemon.drop("/public/gftp/" + download.url.rsplit("/", 1)[1], 1011, "going away")
    assert download.wait(2)
    ended = r"connection to the daemon ended: closed by the daemon \(1011: going away\)"
    with pytest.raises(TransferFailed, match=ended):
        download.result()
