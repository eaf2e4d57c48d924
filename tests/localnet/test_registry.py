"""The loopback image registry, asked the way GolemProvider asks the public one (fast:
no daemon, not marked slow)."""

from __future__ import annotations

from typing import Iterator

import pytest
import requests

from golem_tasks.errors import ConfigurationError
from golem_tasks.localnet.stubs.registry import DEFAULT_IMAGES, ImageRegistry, image_hash
from golem_tasks.providers.images import file_hash
from golem_tasks.providers.yagna._image import DEFAULT_REGISTRY_URL, registry_session, registry_url, resolve_image


@pytest.fixture
def registry() -> Iterator[ImageRegistry]:
    with ImageRegistry() as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # 127.0.0.1 only, whatever proxy the environment names
        yield session


def test_the_examples_tags_resolve_to_a_well_formed_consistent_image(registry, http):
    for tag in DEFAULT_IMAGES:
        sha3, url = resolve_image(http, registry.url, image_tag=tag)
        assert sha3 == image_hash(tag) and len(sha3) == 56
        assert url.startswith(registry.url) and sha3 in url
        assert resolve_image(http, registry.url, image_hash=sha3) == (sha3, url)


def test_an_unknown_tag_is_a_404_and_a_configuration_error_naming_it(registry, http):
    answer = http.get(registry.url + "/v1/image/info", params={"tag": "no/such:tag"}, timeout=5)
    assert answer.status_code == 404 and "no/such:tag" in answer.json()["error"]
    with pytest.raises(ConfigurationError) as caught:
        resolve_image(http, registry.url, image_tag="no/such:tag")
    message = str(caught.value)
    assert "'no/such:tag'" in message and "image_hash=" in message and registry.url in message


def test_an_unknown_hash_is_a_404(registry, http):
    with pytest.raises(ConfigurationError, match="does not know image hash"):
        resolve_image(http, registry.url, image_hash="b" * 56)


def test_images_can_be_added_and_the_server_stops(http):
    registry = ImageRegistry(["me/mine:1"]).start()
    url = registry.url
    assert resolve_image(http, url, image_tag="me/mine:1")[0] == image_hash("me/mine:1")
    with pytest.raises(ConfigurationError):
        resolve_image(http, url, image_tag="golem/alpine:latest")
    registry.add("golem/alpine:latest")
    assert resolve_image(http, url, image_tag="golem/alpine:latest")[0] == image_hash("golem/alpine:latest")
    assert [status for _, status in registry.lookups] == [200, 404, 200]
    registry.stop()
    registry.stop()
    with pytest.raises(requests.ConnectionError):
        http.get(url + "/v1/image/info", params={"tag": "me/mine:1"}, timeout=5)


def test_the_registry_url_comes_from_the_argument_then_the_environment():
    assert registry_url(None, {}) == DEFAULT_REGISTRY_URL
    assert registry_url(None, {"GOLEM_TASKS_REGISTRY_URL": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"
    assert registry_url("http://x", {"GOLEM_TASKS_REGISTRY_URL": "http://127.0.0.1:1"}) == "http://x"


def test_a_registry_on_this_machine_is_asked_without_the_environments_proxy(registry, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with registry_session(registry.url) as http:
        sha3, _ = resolve_image(http, registry.url, image_tag="golem/alpine:latest")
    assert sha3 == image_hash("golem/alpine:latest")


def test_a_tag_with_a_gvmi_file_is_served_by_its_hash(http, tmp_path):
    image = tmp_path / "tool.gvmi"
    image.write_bytes(b"squashfs and metadata" * 1000)
    with ImageRegistry({"me/tool:1": str(image), "golem/alpine:latest": None}) as registry:
        sha3, url = resolve_image(http, registry.url, image_tag="me/tool:1")
        assert sha3 == file_hash(str(image))
        download = http.get(url, timeout=5)
        assert download.status_code == 200 and download.content == image.read_bytes()
        info = http.get(registry.url + "/v1/image/info", params={"hash": sha3}, timeout=5).json()
        assert info["size"] == image.stat().st_size and info["tag"] == "me/tool:1"
        _, tag_only = resolve_image(http, registry.url, image_tag="golem/alpine:latest")
        assert http.get(tag_only, timeout=5).status_code == 404  # a tag without a file has nothing to fetch


def test_localnet_up_takes_image_files_by_tag(tmp_path):
    from golem_tasks.localnet.cli import image_files
    image = tmp_path / "tool.gvmi"
    image.write_bytes(b"x")
    images = image_files([f"me/tool:1={image}"])
    assert images["me/tool:1"] == str(image) and all(images[tag] is None for tag in DEFAULT_IMAGES)
    with pytest.raises(ValueError, match="give TAG=FILE"):
        image_files(["me/tool:1"])
    with pytest.raises(ValueError, match="is not a file"):
        image_files([f"me/tool:1={tmp_path / 'missing.gvmi'}"])
