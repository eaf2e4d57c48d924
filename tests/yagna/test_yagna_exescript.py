"""ExeScript JSON, exactly as the daemon expects it (yagna-protocol.md §3.3)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from golem_tasks.commands import (
    DownloadBytes,
    DownloadFile,
    DownloadJson,
    Run,
    SendBytes,
    SendFile,
    SendJson,
)
from golem_tasks.errors import ConfigurationError
from golem_tasks.providers.yagna.activity.exescript import (
    command_json,
    container_url,
    decode_inline_read,
    deploy_command,
    inline_read_command,
    inline_send_command,
    run_command,
    script_text,
    start_command,
    terminate_command,
    transfer_command,
)

from .yagna_contract import skip_reason

CAPTURE = {"stdout": {"atEnd": {"format": "string"}}, "stderr": {"atEnd": {"format": "string"}}}
URL = "gftp://0xabc/5c1d"


def test_deploy_start_terminate():
    assert deploy_command() == {"deploy": {}}
    assert deploy_command(volumes=["/golem/work"], hostname=None) == {"deploy": {"volumes": ["/golem/work"]}}
    assert start_command() == {"start": {"args": []}}
    assert terminate_command() == {"terminate": {}}


def test_run_captures_output_at_the_end():
    assert command_json(Run(("/bin/sh", "-c", "echo hi; ls /golem/input"))) == {
        "run": {"entry_point": "/bin/sh", "args": ["-c", "echo hi; ls /golem/input"], "capture": CAPTURE}}


def test_run_without_capture():
    assert run_command("/bin/true", capture=False) == {"run": {"entry_point": "/bin/true", "args": []}}


def test_run_with_env_goes_through_the_shell():
    command = Run(("/usr/bin/python3", "job.py", "it's"), env={"B": "two words", "A": "x'y"})
    assert command_json(command) == {"run": {
        "entry_point": "/bin/sh",
        "args": ["-c", "export A='x'\"'\"'y'; export B='two words'; exec \"$@\"", "sh",
                 "/usr/bin/python3", "job.py", "it's"],
        "capture": CAPTURE}}


def test_run_of_a_program_on_path_goes_through_the_shell():
    assert command_json(Run(("date", "-u")))["run"]["args"] == ["-c", 'exec "$@"', "sh", "date", "-u"]


def test_run_refuses_env_names_the_shell_cannot_set():
    with pytest.raises(ConfigurationError, match="shell variable"):
        command_json(Run(("/bin/env",), env={"A-B": "1"}))


def test_run_command_needs_an_absolute_entry_point():
    with pytest.raises(ConfigurationError, match="absolute"):
        run_command("sh", ["-c", "true"])


@pytest.mark.skipif(sys.platform == "win32" or not shutil.which("sh"), reason="needs a POSIX shell")
def test_the_env_wrapper_really_works():
    run = command_json(Run((sys.executable, "-c", "import os,sys; print(os.environ['X'], sys.argv[1:])", "a b"),
                           env={"X": "it's $HOME"}))["run"]
    output = subprocess.run([run["entry_point"], *run["args"]], capture_output=True, text=True, check=True).stdout
    assert output == "it's $HOME ['a b']\n"


@pytest.mark.parametrize("command,expected", [
    (SendFile("/tmp/in.txt", "/golem/input/in.txt"), {"from": URL, "to": "container:/golem/input/in.txt"}),
    (SendBytes(b"x", "/golem/input/b"), {"from": URL, "to": "container:/golem/input/b"}),
    (SendJson.of({"a": 1}, "/golem/input/j.json"), {"from": URL, "to": "container:/golem/input/j.json"}),
    (DownloadFile("/golem/output/o.txt", "/tmp/o.txt"), {"from": "container:/golem/output/o.txt", "to": URL}),
    (DownloadBytes("/golem/output/o.bin"), {"from": "container:/golem/output/o.bin", "to": URL}),
    (DownloadJson("/golem/output/o.json"), {"from": "container:/golem/output/o.json", "to": URL}),
])
def test_transfers(command, expected):
    assert command_json(command, url=URL) == {"transfer": expected}


def test_transfers_need_a_url():
    with pytest.raises(ConfigurationError, match="url="):
        command_json(SendBytes(b"x", "/golem/input/b"))


def test_transfer_and_container_urls():
    assert transfer_command("https://x/y", container_url("/golem/input/y")) == {
        "transfer": {"from": "https://x/y", "to": "container:/golem/input/y"}}
    with pytest.raises(ConfigurationError):
        container_url("golem/input")


def test_script_text_is_compact_json():
    assert script_text([deploy_command(), start_command()]) == '[{"deploy":{}},{"start":{"args":[]}}]'


def test_full_script_matches_the_protocol_example():
    script = [deploy_command(), start_command(),
              command_json(SendFile("/tmp/data.txt", "/golem/input/data.txt"), url="gftp://0x3b/5c"),
              command_json(Run(("/bin/sh", "-c", "wc -l /golem/input/data.txt > /golem/output/result.txt"))),
              command_json(DownloadFile("/golem/output/result.txt", "/tmp/r"), url="gftp://0x3b/Z2")]
    assert json.loads(script_text(script)) == [
        {"deploy": {}},
        {"start": {"args": []}},
        {"transfer": {"from": "gftp://0x3b/5c", "to": "container:/golem/input/data.txt"}},
        {"run": {"entry_point": "/bin/sh", "args": ["-c", "wc -l /golem/input/data.txt > /golem/output/result.txt"],
                 "capture": CAPTURE}},
        {"transfer": {"from": "container:/golem/output/result.txt", "to": "gftp://0x3b/Z2"}},
    ]


def test_scripts_are_valid_for_the_spec(contract):
    if contract is None:
        pytest.skip(skip_reason() or "")
    script = [deploy_command(), start_command(["--x"]),
              command_json(Run(("/bin/echo", "hi"), env={"A": "1"})),
              command_json(SendBytes(b"x", "/golem/input/b"), url=URL), terminate_command(),
              inline_send_command(b"abc", "/golem/input/c"), inline_read_command("/golem/output/o")]
    assert contract.check_exescript(script) == []
    assert contract.check_exescript([{"run": {"args": []}}])  # and it does notice a broken one


@pytest.mark.skipif(not shutil.which("base64") or not shutil.which("sh"), reason="needs sh and base64")
@pytest.mark.parametrize("size", [0, 5, 300 * 1024])
def test_inline_send_and_read_round_trip(tmp_path, size):
    data = os.urandom(size)
    target = str(tmp_path / "in.bin")
    send = inline_send_command(data, target)["run"]
    assert all(len(arg) <= 128 * 1024 for arg in send["args"])  # Linux MAX_ARG_STRLEN
    subprocess.run([send["entry_point"], *send["args"]], check=True)
    assert (tmp_path / "in.bin").read_bytes() == data
    read = inline_read_command(target)["run"]
    stdout = subprocess.run([read["entry_point"], *read["args"]], capture_output=True, text=True, check=True).stdout
    assert decode_inline_read(stdout) == data


def test_inline_send_has_a_limit():
    with pytest.raises(ConfigurationError, match="too many to send inline"):
        inline_send_command(b"x" * 11, "/golem/input/x", limit=10)
