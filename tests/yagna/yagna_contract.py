"""The contract every yagna exchange in these tests must keep: the official OpenAPI specs
(ya-client specs/*.yaml) minus the DEVIATIONS of the real daemon listed below.

The specs are LGPL data and are not copied into this repository: they are read from
``../shared/yagna-specs/specs`` next to the repository, or from the directory named by
``GOLEM_TASKS_YAGNA_SPECS``. Without them the checks are skipped. The checking engine is
yagna_specbook.py.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import attrs

if TYPE_CHECKING:  # pragma: no cover
    from .yagna_specbook import SpecBook

SPECS_ENV = "GOLEM_TASKS_YAGNA_SPECS"
DEFAULT_SPECS = Path(__file__).parents[2] / ".." / "shared" / "yagna-specs" / "specs"
TOOLS = ("yaml", "openapi_schema_validator", "openapi_spec_validator", "referencing")


@attrs.frozen
class Deviation:
    """One documented way the real daemon differs from its spec.

    Attributes:
        name: short id.
        cite: where yagna-protocol.md records it.
        statuses: ``{(operationId, actual status): status the spec documents}``.
        null_body: operationIds whose bodiless spec response comes as JSON ``null``.
        undeclared: ``(operationId or '*', status)`` answered with an ErrorMessage though
            the operation does not list that status.
        patches: ``(file, JSON pointer, {key: value})`` merged into a spec schema (a None
            value deletes the key; a ``$ref`` must go, as its siblings are ignored).
        content_types: ``(operationId or '*', status, content type)`` accepted instead of
            the declared one (the body is then not schema-checked).
        moved: ``(file, method, spec path, daemon path)``: the daemon serves the spec's
            operation at another path (the spec's own operation object is re-keyed).
    """

    name: str
    cite: str
    statuses: Dict[Tuple[str, int], int] = attrs.field(factory=dict)
    null_body: Tuple[str, ...] = ()
    undeclared: Tuple[Tuple[str, int], ...] = ()
    patches: Tuple[Tuple[str, str, Dict[str, Any]], ...] = ()
    content_types: Tuple[Tuple[str, int, str], ...] = ()
    moved: Tuple[Tuple[str, str, str, str], ...] = ()


# The ONLY deviations from the specs the client and the canned answers may show. Each one
# is recorded in /work/shared/research/yagna-protocol.md (section in `cite`) or, when the
# notes lack it, in docs/daemon-deviations.md (`cite` names that file), and
# test_yagna_contract.py proves each is needed: without it a real daemon answer fails.
_RESULT = "/components/schemas/ExeScriptCommandResult/properties"
DEVIATIONS: Tuple[Deviation, ...] = (
    Deviation("created-is-200", "§1.4 table; §9 'Seen as listed in §1.4'",
              statuses={("counterProposalDemand", 200): 201, ("createAgreement", 200): 201,
                        ("createActivity", 200): 201}),
    Deviation("terminate-is-200-empty", "§1.4: terminate/cancel answer 200 with an empty body, not 204",
              statuses={("terminateAgreement", 200): 204, ("cancelAgreement", 200): 204}),
    Deviation("null-body", "§9 DELETE /activity 200 `null`; §5.1 P4, §5.3 P9, §5.4 P12 answer 200 `null`",
              null_body=("DestroyActivity", "releaseAllocation", "acceptDebitNote", "acceptInvoice")),
    Deviation("activity-408", "§1.4 'Activity timeouts: not listed | 408 {\"message\":\"Timeout\"}'",
              undeclared=(("createActivity", 408), ("getExecBatchResults", 408), ("GetActivityState", 408),
                          ("DestroyActivity", 408), ("exec", 408))),
    Deviation("released-allocation-410", "§5.1 P2, §5.3 P9, §5.4 P12: 410 once the allocation was released",
              undeclared=(("getAllocation", 410), ("acceptDebitNote", 410), ("acceptInvoice", 410))),
    Deviation("result-output-null", "§9: exec results send stdout/stderr/message as null",
              patches=tuple(("activity-api.yaml", f"{_RESULT}/{key}", {"nullable": True})
                            for key in ("stdout", "stderr", "message"))),
    Deviation("state-next-null", "§9: ActivityState's second item is null; the enum omits null",
              patches=(("activity-api.yaml", "/components/schemas/ActivityState/properties/state/items",
                        {"enum": ["New", "Initialized", "Deployed", "Ready", "Unresponsive", "Terminated",
                                  None]}),)),
    Deviation("version-pending-null", "§9: GET /version/get returns pending: null",
              patches=(("version-api.yaml", "/components/schemas/YagnaVersionResponse/properties/pending",
                        {"$ref": None, "anyOf": [{"$ref": "#/components/schemas/YagnaVersionInfo"},
                                                 {"enum": [None]}]}),)),
    Deviation("payment-platform-oneof", "§9: PaymentPlatform has no type, so a string matches both oneOf branches",
              patches=(("payment-api.yaml", "/components/schemas/Allocation/properties/paymentPlatform",
                        {"anyOf": [{"$ref": "#/components/schemas/PaymentPlatform"}, {"type": "string"}],
                         "oneOf": None}),)),
    Deviation("error-message-null", "§1.2: payment may send {\"message\": null} on 404",
              patches=(("common.yaml", "/components/schemas/ErrorMessage/properties/message",
                        {"nullable": True}),)),
    Deviation("401-plain-text", "§1.1: a missing or bad key gives 401 with a plain-text body",
              content_types=(("*", 401, "text/plain"),)),
    Deviation("allocation-problem-json", "§1.2: POST /allocations validation failures are RFC 7807",
              content_types=(("createAllocation", 400, "application/problem+json"),)),
    Deviation("usage-vector-array", "docs/daemon-deviations.md: a debit note's usageCounterVector is an "
              "array of numbers (providers send their usage vector), where the spec declares an object",
              patches=(("payment-api.yaml", "/components/schemas/DebitNote/properties/usageCounterVector",
                        {"type": None, "anyOf": [{"type": "object"},
                                                 {"type": "array", "items": {"type": "number"}}]}),)),
    Deviation("deploy-volume-kinds", "docs/daemon-deviations.md: a deploy's volumes map a path to its kind "
              "({\"host\": {}}), as the spec's own example does, where its schema declares strings",
              patches=(("activity-api.yaml", "/components/schemas/DeployCommandBody/properties/volumes/"
                        "additionalProperties", {"type": None, "anyOf": [{"type": "string"}, {"type": "object"}]}),)),
    Deviation("scan-delete-path", "§1.4: DELETE scan is served at /scan/{id}, not the spec's /scan/{id}/events",
              moved=(("market-api.yaml", "delete", "/scan/{subscriptionId}/events", "/scan/{subscriptionId}"),)),
    Deviation("sse-snake-case", "§1.4, §3.4: RuntimeEvent uses batch_id, finished.return_code, a null "
              "finished.message and bare output",
              content_types=(("getExecBatchResults", 200, "text/event-stream"),)),
)


@functools.lru_cache(maxsize=None)
def configured_specs() -> Optional[str]:
    """``GOLEM_TASKS_YAGNA_SPECS`` as it was when first asked. tests/conftest.py asks from
    ``pytest_configure``, before the autouse fixture removes every ``GOLEM_TASKS_*``
    variable from each test's environment, so the variable the skip message names works."""
    return os.environ.get(SPECS_ENV) or None


def specs_dir() -> Optional[Path]:
    """The spec directory, or None when the specs are not available."""
    configured = configured_specs()
    path = Path(configured) if configured else DEFAULT_SPECS
    return path.resolve() if (path / "market-api.yaml").is_file() else None


def skip_reason() -> Optional[str]:
    """Why the contract checks cannot run here, or None when they can."""
    missing = [name for name in TOOLS if importlib.util.find_spec(name) is None]
    if missing:
        return (f"the contract checks need {', '.join(missing)}: "
                "pip install pyyaml openapi-schema-validator openapi-spec-validator")
    if specs_dir() is None:
        where = configured_specs() or DEFAULT_SPECS.resolve()
        return (f"the official yagna OpenAPI specs are not at {where} (LGPL data, never copied "
                f"into the repo): put ya-client's specs/ there or set {SPECS_ENV}")
    return None


@functools.lru_cache(maxsize=None)
def load_book() -> Optional["SpecBook"]:
    """The SpecBook with every DEVIATION, or None when the checks cannot run (see
    :func:`skip_reason`)."""
    directory = specs_dir()
    if skip_reason() is not None or directory is None:
        return None
    from .yagna_specbook import SpecBook

    return SpecBook(directory, DEVIATIONS)
