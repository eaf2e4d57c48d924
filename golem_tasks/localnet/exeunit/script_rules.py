"""The ExeScript commands a manifest allows (``compManifest.script``), checked as yagna's
exe-unit checks them (``exe-unit/src/manifest.rs``, ``ScriptValidator``).

Only ``run`` and ``transfer`` are checked; each becomes a line (``"run <entry_point>
<args joined by spaces>"``, ``"transfer <from> <to>"``) that must match one of the
manifest's entries of that kind: equal to it (``"match": "strict"``) or matched by it
as a regular expression anywhere in the line (``"regex"``, the default of generated
manifests). Entries may also be JSON objects (``{"run": {"args": ..., "match": ...}}``).
A batch with a command no entry allows is refused before anything runs, with
``"Manifest violation in ExeScript: script validation error: no matching manifest entry
found for '<line>'"``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

#: (kind, pattern, match) of one manifest entry.
Entry = Tuple[str, str, str]


def entries(script: Mapping[str, Any]) -> List[Entry]:
    """The manifest script's entries, each as (kind, pattern, match)."""
    default = str(script.get("match") or "strict").lower()
    found: List[Entry] = []
    for command in script.get("commands") or ():
        value: Any = command
        if isinstance(command, str):
            try:
                value = json.loads(command)
            except ValueError:
                kind = next((k for k in ("run", "transfer") if command.startswith(k)), "")
                found.append((kind, command, default))
                continue
        if not isinstance(value, dict):
            continue
        for kind in ("run", "transfer"):
            body = value.get(kind)
            if not isinstance(body, dict):
                continue
            match = str(body.get("match") or default).lower()
            if kind == "run" and isinstance(body.get("args"), (str, list)):
                args = body["args"]
                text = args if isinstance(args, str) else " ".join(json.dumps(a) for a in args)
                found.append((kind, f"run {text}", match))
            elif kind == "transfer" and isinstance(body.get("from"), str) and isinstance(body.get("to"), str):
                found.append((kind, f"transfer {body['from']} {body['to']}", match))
    return found


def _line(command: Mapping[str, Any]) -> Optional[Tuple[str, str]]:
    kind = next(iter(command), "")
    body: Dict[str, Any] = command.get(kind) or {}
    if kind == "run":
        args = " ".join(str(a) for a in body.get("args") or ())
        return kind, f"run {body.get('entry_point', '')} {args}"
    if kind == "transfer":
        return kind, f"transfer {body.get('from', '')} {body.get('to', '')}"
    return None


def violation(script: Optional[Mapping[str, Any]], commands: Iterable[Mapping[str, Any]]) -> Optional[str]:
    """Why the manifest's script refuses ``commands`` (the first one it refuses), or None."""
    if script is None:
        return None
    allowed = entries(script)
    for command in commands:
        line = _line(command)
        if line is None:
            continue
        kind, text = line
        if not any(k == kind and _matches(text, pattern, match) for k, pattern, match in allowed):
            return f"script validation error: no matching manifest entry found for '{text}'"
    return None


def _matches(text: str, pattern: str, match: str) -> bool:
    if match != "regex":
        return text == pattern
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
