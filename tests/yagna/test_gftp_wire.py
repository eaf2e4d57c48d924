"""The GSB-API WebSocket messages: decoding what yagna sends, encoding what it takes."""

from __future__ import annotations

import pytest
from flatbuffers import flexbuffers

from golem_tasks.providers.yagna.transfer.gsb_ws import (
    MalformedRequest,
    decode_request,
    encode_error,
    encode_reply,
)

# Request frames captured from yagna 0.17.6 (golem-node wheel): GSB calls to a service
# bound through POST /gsb-api/v1/services, as the daemon sent them on the WebSocket.
YAGNA_FRAMES = {
    "GetMetadata": (
        "6964002431376631383861302d636263642d343462322d396231642d32303531653466323962633800636f"
        "6d706f6e656e74000b4765744d65746164617461007061796c6f6164000000010003244e0f0301031f50"
        "09141424062401",
        ("17f188a0-cbcd-44b2-9b1d-2051e4f29bc8", "GetMetadata", {}),
    ),
    "GetChunk": (
        "6964002462393238366539622d663835352d346534622d386232612d63376663316638323336373600636f"
        "6d706f6e656e7400084765744368756e6b007061796c6f6164006f66667365740073697a6500020d0702"
        "00000001000000020000000100000000a00000060603426c300301033d6e13141426062401",
        ("b9286e9b-f855-4e4b-8b2a-c7fc1f823676", "GetChunk", {"offset": 1, "size": 40960}),
    ),
    "UploadChunk": (
        "6964002430643839393766652d393432302d346635322d623666352d65616535663438316635386100636f"
        "6d706f6e656e74000b55706c6f61644368756e6b007061796c6f6164006368756e6b00636f6e74656e74"
        "000378797a6f6666736574000214090201021003640401240101010924034a743503010345760b141424"
        "062401",
        ("0d8997fe-9420-4f52-b6f5-eae5f481f58a", "UploadChunk",
         {"chunk": {"offset": 3, "content": b"xyz"}}),
    ),
    "UploadFinished": (
        "6964002434373930386437322d666261642d346334612d396465612d34646638396330356430353200636f"
        "6d706f6e656e74000e55706c6f616446696e6973686564007061796c6f616400686173680002303000010a"
        "010101081403335d1b0301032e5f0b141424062401",
        ("47908d72-fbad-4c4a-9dea-4df89c05d052", "UploadFinished", {"hash": "00"}),
    ),
    "UploadFinished-no-hash": (
        "6964002437636163313961342d376133632d343631342d613838612d39393962363730656566303700636f"
        "6d706f6e656e74000e55706c6f616446696e6973686564007061796c6f616400686173680001060101010000"
        "032f59170301032a5b0b141424062401",
        ("7cac19a4-7a3c-4614-a88a-999b670eef07", "UploadFinished", {"hash": None}),
    ),
}


@pytest.mark.parametrize("name", sorted(YAGNA_FRAMES))
def test_decodes_the_frames_yagna_sends(name):
    frame, expected = YAGNA_FRAMES[name]
    request_id, component, payload = decode_request(bytes.fromhex(frame))
    assert (request_id, component, payload) == expected
    if component == "UploadChunk":
        assert isinstance(payload["chunk"]["content"], (bytes, bytearray))


def test_reply_is_a_map_of_id_and_payload_with_bytes_as_a_blob():
    frame = encode_reply("r-1", {"offset": 40960, "content": b"\x00\xff" * 10})
    decoded = flexbuffers.Loads(bytearray(frame))
    assert decoded == {"id": "r-1", "payload": {"offset": 40960, "content": b"\x00\xff" * 10}}
    # A Blob, as serde_bytes expects; a vector of ints would come back as a list.
    assert isinstance(decoded["payload"]["content"], bytearray)


def test_unit_reply_has_a_null_payload():
    assert flexbuffers.Loads(bytearray(encode_reply("r-2", None))) == {"id": "r-2", "payload": None}


def test_errors_are_variant_maps_or_unit_variant_strings():
    assert flexbuffers.Loads(bytearray(encode_error("r-3", "ReadError", "past the end"))) == {
        "id": "r-3", "error": {"ReadError": "past the end"}}
    assert flexbuffers.Loads(bytearray(encode_error("r-4", "IntegrityError"))) == {
        "id": "r-4", "error": "IntegrityError"}


@pytest.mark.parametrize("frame, has_id", [
    (b"", False),
    (b"\x00\x01\x02", False),
    (bytes(flexbuffers.Dumps([1, 2, 3])), False),
    (bytes(flexbuffers.Dumps({"component": "GetChunk", "payload": {}})), False),
    (bytes(flexbuffers.Dumps({"id": "x", "payload": {}})), True),
    (bytes(flexbuffers.Dumps({"id": "x", "component": "GetChunk", "payload": [1]})), True),
])
def test_malformed_requests_are_refused_with_their_id_when_known(frame, has_id):
    with pytest.raises(MalformedRequest) as caught:
        decode_request(frame)
    assert (caught.value.request_id == "x") is has_id
