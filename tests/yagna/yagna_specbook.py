"""A small OpenAPI 3.0 contract checker for the yagna specs (used by yagna_contract.py).

Why openapi-schema-validator and not openapi-core: openapi-core would pin older
openapi-schema-validator/openapi-spec-validator releases than the ones installed, and it
validates a request/response pair as a whole, so a known daemon deviation (a 200 where
the spec says 201, a nullable field) can only be allowed by turning a check off. Here
the operation lookup is ours (a few lines) and every schema check goes through
``OAS30WriteValidator`` (requests: ``readOnly`` fields not required) or
``OAS30ReadValidator`` (responses) with a ``referencing`` registry of all spec files,
so ``common.yaml`` refs resolve and each deviation is one precise entry.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import attrs
import openapi_schema_validator as osv
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from .yagna_contract import Deviation

API_FILES = ("market-api.yaml", "activity-api.yaml", "payment-api.yaml", "identity-api.yaml",
             "version-api.yaml", "gsb-api.yaml")


@functools.lru_cache(maxsize=None)
def read_specs(directory: Path) -> Dict[str, Any]:
    """The spec files as loaded from ``directory`` (cached; SpecBook copies them)."""
    return {p.name: _string_keys(yaml.load(p.read_text(), Loader=_SpecLoader)) for p in directory.glob("*.yaml")}


class _SpecLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 reads ``on:`` (ServicesListen.on) as True; only true/false are booleans here."""


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def _string_keys(node: Any) -> Any:
    """Status codes (``200:``) become "200", as JSON pointers spell them."""
    if isinstance(node, dict):
        return {str(key): _string_keys(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_string_keys(item) for item in node]
    return node


def _pointer_get(node: Any, pointer: str) -> Any:
    for part in pointer.lstrip("/").split("/") if pointer not in ("", "/") else ():
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part) if isinstance(node, list) else part]
    return node


def _escape(part: Any) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


@attrs.frozen
class Operation:
    doc: str
    method: str
    template: str
    pattern: "re.Pattern[str]"
    pointer: str
    spec: Dict[str, Any]

    @property
    def operation_id(self) -> str:
        return self.spec.get("operationId", f"{self.method} {self.template}")


class SpecBook:
    """The loaded specs, with DEVIATIONS applied, and checks of requests and answers."""

    def __init__(self, directory: Path, deviations: Iterable[Deviation]) -> None:
        self.directory = directory
        self.docs = copy.deepcopy(read_specs(directory))
        self.deviations = tuple(deviations)
        for deviation in self.deviations:
            for doc, pointer, patch in deviation.patches:
                target = _pointer_get(self.docs[doc], pointer)
                for key, value in patch.items():
                    if value is None:
                        target.pop(key, None)
                    else:
                        target[key] = value
            for doc, method, spec_path, daemon_path in deviation.moved:
                paths = self.docs[doc]["paths"]
                operation = paths[spec_path].pop(method)
                paths.setdefault(daemon_path, {})[method] = operation
        self.registry = Registry().with_resources(
            (self.uri(name), Resource.from_contents(doc, default_specification=DRAFT4))
            for name, doc in self.docs.items())
        self.operations = list(self._operations())
        self._validators: Dict[Tuple[str, str], Any] = {}

    def uri(self, doc: str) -> str:
        return (self.directory / doc).as_uri()

    def _operations(self) -> Iterable[Operation]:
        for name in API_FILES:
            doc = self.docs[name]
            prefix = (doc.get("servers") or [{"url": ""}])[0]["url"]
            for template, item in doc["paths"].items():
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(prefix + template))
                for method, spec in item.items():
                    if method in ("get", "post", "put", "delete"):
                        yield Operation(name, method.upper(), prefix + template, re.compile(regex + "$"),
                                        f"/paths/{_escape(template)}/{method}", spec)

    def find(self, method: str, path: str) -> Operation:
        for operation in self.operations:
            if operation.method == method and operation.pattern.match(path):
                return operation
        raise LookupError(f"{method} {path} is not in the yagna specs")

    def deref(self, doc: str, pointer: str) -> Tuple[str, str, Dict[str, Any]]:
        """Follow ``$ref``s from ``doc#pointer``; keep sibling keys (``name`` overrides)."""
        node = _pointer_get(self.docs[doc], pointer)
        siblings: Dict[str, Any] = {}
        while isinstance(node, dict) and "$ref" in node:
            siblings.update({k: v for k, v in node.items() if k != "$ref"})
            target_doc, _, target_pointer = node["$ref"].partition("#")
            doc, pointer = (target_doc or doc), target_pointer
            node = _pointer_get(self.docs[doc], pointer)
        return doc, pointer, {**node, **siblings} if isinstance(node, dict) else node

    def schema_errors(self, doc: str, pointer: str, value: Any, *, write: bool,
                      discriminate: bool = True) -> List[str]:
        ref = f"{self.uri(doc)}#{pointer}"
        key = (ref, "w" if write else "r")
        if key not in self._validators:
            cls = osv.OAS30WriteValidator if write else osv.OAS30ReadValidator
            self._validators[key] = cls({"$ref": ref}, registry=self.registry,
                                        format_checker=osv.oas30_format_checker)
        errors = [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}"
                  for e in self._validators[key].iter_errors(value)]
        return errors + (self._discriminated_errors(doc, value, write) if discriminate else [])

    def _discriminated_errors(self, doc: str, value: Any, write: bool) -> List[str]:
        # OpenAPI discriminators are not checked by JSON Schema: check each event against
        # the schema its eventType names (e.g. AgreementTerminatedEvent needs a signature).
        errors = []
        for item in value if isinstance(value, list) else [value]:
            name = item.get("eventType") if isinstance(item, dict) else None
            if isinstance(name, str) and name in self.docs[doc].get("components", {}).get("schemas", {}):
                errors += [f"{name}: {e}" for e in self.schema_errors(
                    doc, f"/components/schemas/{name}", item, write=write, discriminate=False)]
        return errors

    # -- exchanges ---------------------------------------------------------------------
    def check_exchange(self, method: str, url: str, headers: Dict[str, str], body: Optional[bytes],
                       status: int, response_headers: Dict[str, str], response_body: Optional[bytes],
                       api_url: str) -> List[str]:
        """Every way this request/answer pair breaks the specs (minus DEVIATIONS)."""
        parts = urlsplit(url)
        path = parts.path[len(urlsplit(api_url).path.rstrip("/")):]
        try:
            operation = self.find(method, path)
        except LookupError as exc:
            return [str(exc)]
        where = f"{operation.operation_id} ({method} {path})"
        problems = self.check_request(operation, parse_qsl(parts.query, keep_blank_values=True), headers, body)
        problems += self.check_response(operation, status, response_headers, response_body)
        return [f"{where}: {problem}" for problem in problems]

    def parameters(self, operation: Operation) -> Dict[str, Tuple[str, str, Dict[str, Any]]]:
        path_item = operation.pointer.rsplit("/", 1)[0]
        found = {}
        for base in (path_item, operation.pointer):
            node = _pointer_get(self.docs[operation.doc], base)
            for index, _ in enumerate(node.get("parameters", [])):
                doc, pointer, param = self.deref(operation.doc, f"{base}/parameters/{index}")
                found[param["name"]] = (doc, pointer, param)
        return found

    def check_request(self, operation: Operation, query: List[Tuple[str, str]], headers: Dict[str, str],
                      body: Optional[bytes]) -> List[str]:
        problems = []
        declared = self.parameters(operation)
        for name, text in query:
            if name not in declared or declared[name][2]["in"] != "query":
                problems.append(f"query parameter {name!r} is not in the spec")
                continue
            doc, pointer, param = declared[name]
            value = _coerce(text, self.deref(doc, pointer + "/schema")[2])
            problems += [f"query {name}={text!r}: {e}" for e in
                         self.schema_errors(doc, pointer + "/schema", value, write=True)]
        sent = {name for name, _ in query}
        problems += [f"required query parameter {name!r} missing" for name, (_, _, p) in declared.items()
                     if p["in"] == "query" and p.get("required") and name not in sent]
        if operation.spec.get("security", self.docs[operation.doc].get("security")) and \
                not headers.get("Authorization", "").startswith("Bearer "):
            problems.append("no Bearer app key")
        return problems + self._check_request_body(operation, headers, body)

    def _check_request_body(self, operation: Operation, headers: Dict[str, str], body: Optional[bytes]) -> List[str]:
        if "requestBody" not in operation.spec:
            return ["a body was sent, the spec has none"] if body else []
        doc, pointer, request_body = self.deref(operation.doc, operation.pointer + "/requestBody")
        if not body:
            return ["the required body is missing"] if request_body.get("required") else []
        if headers.get("Content-Type", "").split(";")[0] != "application/json":
            return [f"body sent as {headers.get('Content-Type')!r}, not application/json"]
        value = json.loads(body)
        schema = f"{pointer}/content/application~1json/schema"
        problems = [f"request {e}" for e in self.schema_errors(doc, schema, value, write=True)]
        if operation.operation_id == "exec" and isinstance(value, dict) and isinstance(value.get("text"), str):
            problems += self.check_exescript(json.loads(value["text"]))
        return problems

    def check_exescript(self, commands: Any) -> List[str]:
        """Each command of an exec ``text`` against the spec's ``<Name>Command`` schema."""
        if not isinstance(commands, list):
            return ["exec text is not a JSON list"]
        problems = []
        for index, command in enumerate(commands):
            name = next(iter(command), "") if isinstance(command, dict) and len(command) == 1 else ""
            schema = f"/components/schemas/{name.capitalize()}Command"
            if not name or name.capitalize() + "Command" not in self.docs["activity-api.yaml"]["components"]["schemas"]:
                problems.append(f"exec command #{index} is not a known command: {command!r}")
                continue
            problems += [f"exec command #{index}: {e}" for e in
                         self.schema_errors("activity-api.yaml", schema, command, write=True)]
        return problems

    def _allowed(self, attribute: str) -> list:
        return [entry for deviation in self.deviations for entry in getattr(deviation, attribute)]

    def check_response(self, operation: Operation, status: int, headers: Dict[str, str],
                       body: Optional[bytes]) -> List[str]:
        op_id = operation.operation_id
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        for who, code, kind in self._allowed("content_types"):
            if who in ("*", op_id) and code == status and kind == content_type:
                return []
        spec_status = {key: value for d in self.deviations for key, value in d.statuses.items()}.get(
            (op_id, status), status)
        responses = operation.spec["responses"]
        if str(spec_status) in responses:
            key = str(spec_status)
        elif (op_id, status) in self._allowed("undeclared"):
            return self._check_json(body, content_type, "common.yaml", "/components/schemas/ErrorMessage")
        elif "default" in responses:
            key = "default"
        else:
            return [f"status {status} is not in the spec"]
        doc, pointer, response = self.deref(operation.doc, f"{operation.pointer}/responses/{_escape(key)}")
        if not response.get("content"):
            if not body or (op_id in self._allowed("null_body") and body.strip() == b"null"):
                return []
            return [f"status {status} has no content in the spec, got {body[:80]!r}"]
        if "application/json" not in response["content"]:
            return [f"unexpected content in the spec: {list(response['content'])}"]
        return self._check_json(body, content_type, doc, f"{pointer}/content/application~1json/schema")

    def _check_json(self, body: Optional[bytes], content_type: str, doc: str, pointer: str) -> List[str]:
        if content_type != "application/json":
            return [f"answered {content_type or 'no content type'}, the spec says application/json"]
        try:
            value = json.loads(body or b"")
        except ValueError:
            return [f"answer is not JSON: {body[:80]!r}"]
        return [f"response {e}" for e in self.schema_errors(doc, pointer, value, write=False)]

    def check_runtime_event(self, data: Dict[str, Any]) -> List[str]:
        """An SSE ``data`` payload against RuntimeEvent, after undoing the documented
        snake_case/bare-output deviation (DEVIATIONS 'sse-snake-case')."""
        event = dict(data)
        if "batch_id" in event:
            event["batchId"] = event.pop("batch_id")
        kind = dict(event.get("kind") or {})
        if isinstance(kind.get("finished"), dict):
            finished = dict(kind["finished"])
            if "return_code" in finished:
                finished["returnCode"] = finished.pop("return_code")
            if finished.get("message", "") is None:
                del finished["message"]
            kind["finished"] = finished
        for stream in ("stdout", "stderr"):
            if isinstance(kind.get(stream), str):
                kind[stream] = {"str": kind[stream]}
        event["kind"] = kind
        doc = "activity-api.yaml"
        problems = self.schema_errors(doc, "/components/schemas/RuntimeEvent", event, write=False)
        names = {"started": "Started", "finished": "Finished", "stdout": "StdOut", "stderr": "StdErr",
                 "progress": "Progress"}
        for key, suffix in names.items():
            if key in kind:
                pointer = f"/components/schemas/RuntimeEventKind{suffix}"
                problems += self.schema_errors(doc, pointer, kind if key != "progress" else kind[key],
                                               write=False)
        return problems


def _coerce(text: str, schema: Dict[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "number":
            return float(text)
        if kind == "integer":
            return int(text)
        if kind == "array":
            return text.split(",")
    except ValueError:
        return text
    return text
