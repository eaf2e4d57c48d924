"""The server-sent-events parser, fed the way a socket delivers bytes: in odd pieces."""

import pytest

from golem_tasks.providers.yagna._http.sse import SseMessage, iter_lines, iter_messages

FRAMES = (b':ping\n\nevent: runtime\ndata: {"index":0}\nid: 1\n\n'
          b'event: runtime\r\ndata: {"a":\r\ndata: "caf\xc3\xa9"}\r\nid: 2\r\n\r\n'
          b"data: no event name\rid: 3\r\r")
EXPECTED = [SseMessage("runtime", '{"index":0}', "1"),
            SseMessage("runtime", '{"a":\n"café"}', "2"),
            SseMessage("message", "no event name", "3")]


def split(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_frames_survive_any_chunking(size):
    assert list(iter_messages(iter_lines(split(FRAMES, size)))) == EXPECTED


def test_a_crlf_split_between_chunks_is_one_line_end():
    assert list(iter_lines([b"a\r", b"\nb\r", b"", b"\nc"])) == ["a", "b", "c"]


def test_empty_chunks_do_not_lose_a_pending_cr():
    assert list(iter_lines([b"a\r", b"", b"\n", b"\n"])) == ["a", ""]


def test_comments_and_unknown_fields_are_skipped():
    lines = [": keep-alive", "retry: 1000", "foo: bar", "data:x", "", "data", ""]
    assert list(iter_messages(lines)) == [SseMessage("message", "x", None), SseMessage("message", "", None)]


def test_a_frame_cut_off_by_the_end_is_dropped():
    assert list(iter_messages(["data: partial"])) == []


def test_the_last_id_carries_over():
    assert [m.id for m in iter_messages(["id: 7", "data: a", "", "data: b", ""])] == ["7", "7"]
