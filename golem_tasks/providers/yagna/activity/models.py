"""What the activity API answers: batch results, streamed runtime events, activity state.

The daemon differs from the spec here (yagna-protocol.md §1.4, §3.4, §9): result
``stdout``/``stderr``/``message`` may be ``null``; output may be a string or a list of
bytes; SSE events use ``batch_id`` and ``return_code`` (snake_case) and a naive UTC
timestamp. The parsers below accept both spellings.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping, Optional

import attrs

from .._http.json import format_timestamp, frozen_mapping, optional_str, parse_timestamp, required_str

ACTIVITY_STATES = ("New", "Initialized", "Deployed", "Ready", "Unresponsive", "Terminated")
_EXIT_CODE = re.compile(r"exited with code (-?\d+)")


def _output(value: Any) -> Optional[str]:
    """Captured output: text as is, a byte list (``"bin"`` format) decoded as UTF-8."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"command output must be a string or a byte list, got {value!r}")


@attrs.frozen(kw_only=True)
class ExeScriptCommandResult:
    """The result of one command of a batch.

    Attributes:
        index: the command's position in the batch.
        result: ``Ok`` or ``Error``.
        stdout, stderr: captured output (None when not captured, or when results were
            asked with ``commandIndex`` for an earlier index).
        message: the error message of a failed command.
        is_batch_finished: True on the last command, and on the first ``Error``.
    """

    index: int = attrs.field(validator=attrs.validators.ge(0))
    event_date: datetime
    result: str = attrs.field(validator=attrs.validators.in_(("Ok", "Error")))
    stdout: Optional[str] = None
    stderr: Optional[str] = None
    message: Optional[str] = None
    is_batch_finished: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ExeScriptCommandResult":
        index = data["index"]
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"index must be an int, got {index!r}")
        return cls(
            index=index, event_date=parse_timestamp(data["eventDate"]), result=required_str(data, "result"),
            stdout=_output(data.get("stdout")), stderr=_output(data.get("stderr")),
            message=optional_str(data.get("message")), is_batch_finished=bool(data.get("isBatchFinished")),
        )

    def to_json(self) -> dict:
        return {"index": self.index, "eventDate": format_timestamp(self.event_date), "result": self.result,
                "stdout": self.stdout, "stderr": self.stderr, "message": self.message,
                "isBatchFinished": self.is_batch_finished}

    @property
    def ok(self) -> bool:
        return self.result == "Ok"

    @property
    def exit_code(self) -> Optional[int]:
        """0 for ``Ok``; for ``Error``, N from "ExeScript command exited with code N",
        or None when the command failed without a program exit (a transfer, a crash)."""
        if self.ok:
            return 0
        match = _EXIT_CODE.search(self.message or "")
        return int(match.group(1)) if match else None


@attrs.frozen(kw_only=True)
class RuntimeEvent:
    """One live event of a running batch, from the SSE stream.

    Attributes:
        kind: ``started``, ``stdout``, ``stderr``, ``finished`` or ``progress``.
        payload: the value under ``kind`` (a dict for started/finished/progress,
            the output chunk for stdout/stderr).
    """

    batch_id: str
    index: int
    timestamp: datetime
    kind: str
    payload: Any = attrs.field(hash=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RuntimeEvent":
        batch_id = data["batch_id"] if "batch_id" in data else data["batchId"]
        kind_data = data["kind"]
        if not isinstance(kind_data, Mapping) or len(kind_data) != 1:
            raise TypeError(f"kind must be an object with one key, got {kind_data!r}")
        (kind, payload), = kind_data.items()
        if kind in ("stdout", "stderr"):
            if isinstance(payload, Mapping):  # the spec's {"str": ...} / {"bin": ...} form
                payload = payload.get("str", payload.get("bin"))
            payload = _output(payload)
        elif isinstance(payload, Mapping):
            if kind == "finished" and "returnCode" in payload:  # the spec's spelling
                payload = {("return_code" if key == "returnCode" else key): value
                           for key, value in payload.items()}
            payload = frozen_mapping(payload)
        return cls(batch_id=str(batch_id), index=int(data["index"]),
                   timestamp=parse_timestamp(data["timestamp"]), kind=kind, payload=payload)

    @property
    def return_code(self) -> Optional[int]:
        """The exit code of a ``finished`` event."""
        if self.kind != "finished":
            return None
        code = self.payload.get("return_code")
        return code if isinstance(code, int) else None

    @property
    def output(self) -> Optional[str]:
        """The text of a ``stdout``/``stderr`` event."""
        return self.payload if self.kind in ("stdout", "stderr") else None

    @property
    def message(self) -> Optional[str]:
        return optional_str(self.payload.get("message")) if isinstance(self.payload, Mapping) else None


@attrs.frozen(kw_only=True)
class ActivityState:
    """``GET /activity/{id}/state``: the current state and the one it is moving to."""

    state: str = attrs.field(validator=attrs.validators.in_(ACTIVITY_STATES))
    next_state: Optional[str] = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(ACTIVITY_STATES)))
    reason: Optional[str] = None
    error_message: Optional[str] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ActivityState":
        pair = data["state"]
        if not isinstance(pair, list) or not 1 <= len(pair) <= 2:
            raise TypeError(f"state must be [current, next], got {pair!r}")
        return cls(state=pair[0], next_state=pair[1] if len(pair) == 2 else None,
                   reason=optional_str(data.get("reason")),
                   error_message=optional_str(data.get("errorMessage")))

    def to_json(self) -> dict:
        data: dict = {"state": [self.state, self.next_state]}
        if self.reason is not None:
            data["reason"] = self.reason
        if self.error_message is not None:
            data["errorMessage"] = self.error_message
        return data

    @property
    def alive(self) -> bool:
        """False once the activity is (or is becoming) ``Terminated``."""
        return "Terminated" not in (self.state, self.next_state)

    @property
    def ready(self) -> bool:
        return self.state == "Ready"
