"""GsbGftpStorage against the real yagna daemon (golem-node), offline on loopback.

The provider's side is the local exe-unit's GFTP client (golem_tasks.localnet.exeunit.transfer):
it calls ``/transfer/net/<requestor>/gftp/<id>/...`` on the daemon's GSB router, as a
real exe-unit does, and yagna relays each call to the storage's WebSocket.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from golem_tasks.providers.yagna import NotFound
from golem_tasks.providers.yagna._client import YagnaClient
from golem_tasks.providers.yagna.transfer.gftp import MAX_CHUNK, GsbGftpStorage, TransferFailed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def yagna(tmp_path_factory):
    from golem_tasks.localnet.daemon.process import YagnaDaemon, find_yagna
    from golem_tasks.localnet.errors import DaemonNotInstalled

    try:
        binary = find_yagna()
    except DaemonNotInstalled as exc:
        pytest.skip(f"golem-node is not installed ({exc}); pip install 'golem_tasks[localnet]'")
    daemon = YagnaDaemon(str(tmp_path_factory.mktemp("yagna")), binary=binary)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.fixture
def client(yagna):
    with requests.Session() as session:
        session.trust_env = False
        yield YagnaClient(session, yagna.settings.api_url, yagna.settings.app_key)


@pytest.fixture
def storage(client):
    with GsbGftpStorage(client) as storage:
        yield storage


@pytest.fixture
def exeunit(yagna, storage):
    """The provider's side: (transfers, call(url, component, payload))."""
    from golem_tasks.localnet.exeunit.gsb import GsbClient
    from golem_tasks.localnet.exeunit.transfer import Transfers

    with GsbClient(yagna.settings.gsb_url, caller=storage.node_id) as bus:
        transfers = Transfers(bus)

        def call(url, component, payload=None):
            return bus.call(f"/transfer/net/{storage.node_id}/gftp/{url.rsplit('/', 1)[1]}/{component}",
                            payload, timeout=10)

        try:
            yield transfers, call
        finally:
            transfers.close()


def test_a_provider_fetches_published_files_through_yagna(storage, exeunit, tmp_path):
    transfers, _ = exeunit
    sources = []
    for i, size in enumerate([3 * 1024 * 1024 + 17, 0, 40 * 1024]):
        path = tmp_path / f"in{i}.bin"
        path.write_bytes(os.urandom(size))
        sources.append(path)
    urls = [storage.publish(p).url for p in sources]
    errors = []

    def fetch(url, target):
        try:
            transfers.fetch(url, str(target))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(u, tmp_path / f"got{i}.bin")) for i, u in enumerate(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    for i, source in enumerate(sources):
        assert (tmp_path / f"got{i}.bin").read_bytes() == source.read_bytes()


def test_a_provider_uploads_a_file_through_yagna(storage, exeunit, tmp_path):
    transfers, _ = exeunit
    data = os.urandom(2 * 1024 * 1024 + 5)
    (tmp_path / "result.bin").write_bytes(data)
    download = storage.receive(tmp_path / "out" / "result.bin")
    transfers.push(str(tmp_path / "result.bin"), download.url)
    assert download.result() == tmp_path / "out" / "result.bin"
    assert (tmp_path / "out" / "result.bin").read_bytes() == data


def test_out_of_order_chunks_and_a_bad_hash_through_yagna(storage, exeunit):
    _, call = exeunit
    good = storage.receive()
    assert call(good.url, "UploadChunk", {"chunk": {"offset": 3, "content": b"def"}}) == {"Ok": None}
    assert call(good.url, "UploadChunk", {"chunk": {"offset": 0, "content": b"abc"}}) == {"Ok": None}
    assert call(good.url, "UploadFinished", {"hash": hashlib.sha3_256(b"abcdef").hexdigest()}) == {"Ok": None}
    assert good.result() == b"abcdef"
    bad = storage.receive()
    assert call(bad.url, "UploadChunk", {"chunk": {"offset": 0, "content": b"abc"}}) == {"Ok": None}
    assert call(bad.url, "UploadFinished", {"hash": "00" * 32}) == {"Err": "IntegrityError"}
    with pytest.raises(TransferFailed, match="corrupted"):
        bad.result()


def test_concurrent_shuffled_uploads_through_yagna(storage, exeunit):
    _, call = exeunit
    data = os.urandom(1024 * 1024 + 3)
    chunks = [(o, data[o:o + 40 * 1024]) for o in range(0, len(data), 40 * 1024)]
    random.Random(4).shuffle(chunks)
    download = storage.receive()
    with ThreadPoolExecutor(8) as pool:  # 8 in flight, as the exe-unit does
        replies = list(pool.map(lambda c: call(download.url, "UploadChunk",
                                               {"chunk": {"offset": c[0], "content": c[1]}}), chunks))
    assert replies == [{"Ok": None}] * len(chunks)
    assert call(download.url, "UploadFinished", {"hash": hashlib.sha3_256(data).hexdigest()}) == {"Ok": None}
    assert download.result() == data


def test_the_largest_chunk_fits_the_daemons_frame_limit(storage, exeunit):
    _, call = exeunit
    data = os.urandom(2 * MAX_CHUNK)
    url = storage.publish(data).url
    assert call(url, "GetMetadata") == {"Ok": {"fileSize": len(data)}}
    assert call(url, "GetChunk", {"offset": 0, "size": MAX_CHUNK})["Ok"]["content"] == data[:MAX_CHUNK]
    assert "at most" in call(url, "GetChunk", {"offset": 0, "size": 2 * MAX_CHUNK})["Err"]["InternalError"]


def test_release_unbinds_at_the_daemon(client, storage):
    url = storage.publish(b"abc").url
    services_id = base64.urlsafe_b64encode(f"/public/gftp/{url.rsplit('/', 1)[1]}".encode()).decode().rstrip("=")
    storage.release(url)
    with pytest.raises(NotFound):
        client.gsb.unbind_services(services_id)
    assert not [t for t in threading.enumerate() if t.name.startswith("gsb-ws")]
