"""LocalProvider as a Golem VM: mounts and volumes, images, resource limits, and the
host sandbox's honesty. Runs against both sandbox kinds where both apply."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from golem_tasks.commands import DownloadBytes, Run, SendBytes
from golem_tasks.errors import CommandExecutionError, ConfigurationError
from golem_tasks.providers import images, local
from golem_tasks.providers.local import LocalProvider, Mount

from .test_local_provider import PYTHON, bwrap_problem, sh


@pytest.fixture(params=["host", "bwrap"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "bwrap" and bwrap_problem():
        pytest.skip(f"bwrap sandbox unavailable: {bwrap_problem()}")
    return str(request.param)


@pytest.fixture
def bwrap_only() -> None:
    if bwrap_problem():
        pytest.skip(f"bwrap sandbox unavailable: {bwrap_problem()}")

# -- mounts and volumes ------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    data = tmp_path / "dataset"
    data.mkdir()
    (data / "words.txt").write_text("apple\nbanana\n")
    return data


def test_a_read_only_mount_is_readable_not_writable(kind: str, tmp_path: Path, dataset: Path) -> None:
    with LocalProvider(tmp_path / "root", sandbox=kind, mounts={"/golem/data": dataset}) as provider:
        session = provider.engage()
        [result] = session.execute([Run(("cat", "/golem/data/words.txt"))], timeout=30)
        assert result.stdout == "apple\nbanana\n"
        [download] = session.execute([DownloadBytes("/golem/data/words.txt")], timeout=30)
        assert download.data == b"apple\nbanana\n"
        with pytest.raises(CommandExecutionError, match="LocalProvider\\(volumes=...\\)"):
            session.execute([SendBytes(b"x", "/golem/data/new.txt")], timeout=30)
        if kind == "bwrap":  # the host sandbox maps paths; only bwrap can refuse writes
            [write] = session.execute([Run(("touch", "/golem/data/new.txt"), check=False)], timeout=30)
            assert write.exit_code != 0 and "Read-only file system" in write.stderr
    assert sorted(p.name for p in dataset.iterdir()) == ["words.txt"]


def test_a_writable_mount_outside_golem(kind: str, tmp_path: Path, dataset: Path) -> None:
    mount = Mount(dataset, "/data", writable=True)
    with LocalProvider(tmp_path / "root", sandbox=kind, mounts=[mount]) as provider:
        session = provider.engage()
        assert session.info.volumes == ("/golem/input", "/golem/output", "/golem/work", "/data")
        session.execute([SendBytes(b"sent", "/data/sent.txt"),
                         Run(("cp", "/data/words.txt", "/data/copy.txt"))], timeout=30)
    assert (dataset / "sent.txt").read_bytes() == b"sent"
    assert (dataset / "copy.txt").read_text() == "apple\nbanana\n"


def test_a_mount_under_tmp_is_the_host_directory(kind: str, tmp_path: Path, dataset: Path) -> None:
    """/tmp is the sandbox's own (bwrap), but a mount inside it still shows the host's data."""
    with LocalProvider(tmp_path / "root", sandbox=kind, mounts={"/tmp/data": dataset}) as provider:
        session = provider.engage()
        first, second = (session.execute([Run(("cat", "/tmp/data/words.txt"))], timeout=30)[0] for _ in range(2))
    assert first.stdout == second.stdout == "apple\nbanana\n"


def test_volumes_name_where_sends_may_go(kind: str, tmp_path: Path) -> None:
    with LocalProvider(tmp_path, sandbox=kind, volumes=("/golem/resource",)) as provider:
        session = provider.engage()
    assert session.info.volumes == ("/golem/input", "/golem/output", "/golem/work", "/golem/resource")


@pytest.mark.parametrize("mounts, message", [
    ("/srv", "must map sandbox paths"),
    ({"data": "."}, "normalised absolute path"),
    ({"/golem": "."}, "taken by the sandbox"),
    ({"/golem/work": "."}, "taken by the sandbox"),
    ({"/proc/x": "."}, "taken by the sandbox"),
    ({"/data": "/golem-tasks-no-such-dir"}, "is not a directory"),
])
def test_bad_mounts(tmp_path: Path, mounts: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LocalProvider(tmp_path, sandbox="host", mounts=mounts)  # type: ignore[arg-type]


# -- the host sandbox says what it is ------------------------------------------------------


def test_the_host_sandbox_warns_once_with_the_fix(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(local, "_host_warned", False)
    with caplog.at_level(logging.WARNING, logger=local.__name__):
        for _ in range(3):
            LocalProvider(tmp_path, sandbox="host").close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "isolates nothing" in warnings[0].getMessage()
    assert "apt-get install bubblewrap" in warnings[0].getMessage()


# -- requirements you can feel ---------------------------------------------------------------


ALLOCATE = "import sys; b = bytearray(int(sys.argv[1]) << 20); print('ok')"


def test_min_mem_gib_bounds_each_process(kind: str, tmp_path: Path) -> None:
    with LocalProvider(tmp_path, sandbox=kind, min_mem_gib=0.25) as provider:
        session = provider.engage()
        small, big = session.execute([Run((PYTHON, "-c", ALLOCATE, "32"), check=False),
                                      Run((PYTHON, "-c", ALLOCATE, "512"), check=False)], timeout=60)
    assert small.stdout == "ok\n"
    assert big.exit_code != 0 and "MemoryError" in big.stderr


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to restrict one session to one")
def test_min_cpu_threads_bounds_the_cpus(kind: str, tmp_path: Path) -> None:
    script = "import os; print(sorted(os.sched_getaffinity(0)))"
    with LocalProvider(tmp_path, sandbox=kind, min_cpu_threads=1) as provider:
        first, second = provider.engage(), provider.engage()
        [one] = first.execute([Run((PYTHON, "-c", script))], timeout=30)
        [two] = second.execute([Run((PYTHON, "-c", script))], timeout=30)
    assert len(eval(one.stdout)) == len(eval(two.stdout)) == 1
    assert one.stdout != two.stdout  # sessions spread over the CPUs


@pytest.mark.parametrize("kwargs, message", [
    ({"min_mem_gib": 0}, "min_mem_gib must be a positive number"),
    ({"min_cpu_threads": 1.5}, "min_cpu_threads must be a positive whole number"),
    ({"pass_env": "HTTP_PROXY"}, "use pass_env=\\('HTTP_PROXY',\\)"),
])
def test_bad_requirements(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        LocalProvider(tmp_path, sandbox="host", **kwargs)


# -- images --------------------------------------------------------------------------------

BUSYBOX = shutil.which("busybox")
TOOLS = ("sh", "echo", "cat", "ls", "env", "pwd", "touch")
CONFIG = {"Env": ["PATH=/bin", "GREETING=hello from the image"], "WorkingDir": "/golem/work",
          "Volumes": {"/golem/resource": {}}}


def make_rootfs(directory: Path) -> Path:
    """A tiny root file system: a static busybox and a few of its applets."""
    if BUSYBOX is None or not _static(BUSYBOX):
        pytest.skip("a static busybox is needed to build an image (apt-get install busybox-static)")
    (directory / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, directory / "bin" / "busybox")
    for tool in TOOLS:
        (directory / "bin" / tool).symlink_to("busybox")
    return directory


def _static(path: str) -> bool:
    """A 64-bit ELF file with no program interpreter (PT_INTERP): it needs no libraries."""
    with open(path, "rb") as binary:
        head = binary.read(1 << 16)
    if head[:5] != b"\x7fELF\x02":
        return False
    order = "little" if head[5] == 1 else "big"
    offset = int.from_bytes(head[0x20:0x28], order)
    size, count = int.from_bytes(head[0x36:0x38], order), int.from_bytes(head[0x38:0x3A], order)
    types = [int.from_bytes(head[offset + i * size:offset + i * size + 4], order) for i in range(count)]
    return 3 not in types


def make_gvmi(tmp_path: Path, config: dict = CONFIG) -> Path:
    """A GVMI file as gvmkit-build makes it: squashfs, then the metadata."""
    if shutil.which("mksquashfs") is None:
        pytest.skip("mksquashfs is needed to build an image (apt-get install squashfs-tools)")
    rootfs = make_rootfs(tmp_path / "rootfs")
    image = tmp_path / "tiny.gvmi"
    subprocess.run(["mksquashfs", str(rootfs), str(image), "-noappend", "-quiet", "-no-progress"], check=True,
                   stdout=subprocess.DEVNULL)
    with image.open("ab") as out:
        out.write(images.metadata_bytes(config))
    return image


@pytest.fixture
def gvmi(tmp_path: Path) -> Path:
    return make_gvmi(tmp_path)


def test_the_gvmi_metadata_is_read_back(gvmi: Path) -> None:
    assert images.read_metadata(str(gvmi)) == CONFIG


def test_a_command_runs_in_the_image(bwrap_only, gvmi: Path, tmp_path: Path) -> None:
    with LocalProvider(tmp_path / "root", sandbox="bwrap", image=gvmi, image_cache=tmp_path / "cache") as provider:
        session = provider.engage()
        results = session.execute([
            SendBytes(b"resource", "/golem/resource/r.txt"),  # the image's VOLUME is writable
            sh('echo "$GREETING"; pwd; ls /; cat /golem/resource/r.txt'),
        ], timeout=30)
    lines = results[-1].stdout.splitlines()
    assert lines[0] == "hello from the image" and lines[1] == "/golem/work"
    assert "bin" in lines and "usr" not in lines  # the image's root, not the host's
    assert lines[-1] == "resource"
    assert session.info.volumes == ("/golem/input", "/golem/output", "/golem/work", "/golem/resource")


def test_a_program_missing_from_the_image_fails_as_on_a_provider(bwrap_only, gvmi: Path, tmp_path: Path) -> None:
    assert shutil.which("python3")  # present on this machine...
    with LocalProvider(tmp_path / "root", sandbox="bwrap", image=gvmi, image_cache=tmp_path / "cache") as provider:
        session = provider.engage()
        with pytest.raises(CommandExecutionError) as caught:
            session.execute([Run(("python3", "-c", "print(1)"))], timeout=30)  # ...but not in the image
        assert caught.value.exit_code == 127 and "python3" in str(caught.value)
        with pytest.raises(CommandExecutionError):
            session.execute([Run(("/usr/bin/python3", "-c", "print(1)"))], timeout=30)
        [result] = session.execute([Run(("echo", "still", "works"))], timeout=30)
    assert result.stdout == "still works\n"


def test_a_command_in_the_image_cannot_chroot_out(bwrap_only, gvmi: Path, tmp_path: Path) -> None:
    with LocalProvider(tmp_path / "root", sandbox="bwrap", image=gvmi, image_cache=tmp_path / "cache") as provider:
        [result] = provider.engage().execute([Run(("sh", "-c", "cat /proc/self/status"))], timeout=30)
    capabilities = {line.split(":")[0]: int(line.split()[1], 16) for line in result.stdout.splitlines()
                    if line.startswith("Cap")}
    assert capabilities["CapEff"] == capabilities["CapPrm"] == capabilities["CapBnd"] & (1 << 18) == 0


def test_an_unpacked_image_is_cached_by_hash(bwrap_only, gvmi: Path, tmp_path: Path, caplog) -> None:
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger=images.__name__):
        for _ in range(2):
            with LocalProvider(tmp_path / "root", sandbox="bwrap", image=gvmi, image_cache=cache) as provider:
                [result] = provider.engage().execute([Run(("echo", "hi"))], timeout=30)
                assert result.stdout == "hi\n"
    assert caplog.text.count("unpacked image") == 1
    assert [p.name for p in cache.iterdir()] == [images.file_hash(str(gvmi))]
    assert provider.image is not None and provider.image.hash == images.file_hash(str(gvmi))


def test_a_root_file_system_directory_is_an_image(bwrap_only, tmp_path: Path) -> None:
    rootfs = make_rootfs(tmp_path / "rootfs")
    with LocalProvider(tmp_path / "root", sandbox="bwrap", image=rootfs) as provider:
        [result] = provider.engage().execute([sh("echo $PATH; ls /")], timeout=30)
    path, *entries = result.stdout.split()
    assert path == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert "bin" in entries and "usr" not in entries


def test_an_image_needs_bwrap(gvmi: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="needs the bwrap sandbox.*install bubblewrap"):
        LocalProvider(tmp_path, sandbox="host", image=gvmi)


def test_a_file_that_is_no_gvmi_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gvmi"
    bogus.write_bytes(b"not an image at all")
    with pytest.raises(ConfigurationError, match="is not a GVMI image"):
        images.open_image(str(bogus), str(tmp_path / "cache"))
    with pytest.raises(ConfigurationError, match="neither a GVMI file nor a directory"):
        images.open_image(str(tmp_path / "missing.gvmi"), str(tmp_path / "cache"))


def test_a_registry_name_runs_on_this_machine(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger=local.__name__), \
            LocalProvider(tmp_path, sandbox="host", image="golem/alpine:latest") as provider:
        assert provider.image is None
    assert "golem/alpine:latest is a registry name" in caplog.text
