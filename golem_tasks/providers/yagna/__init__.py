"""The Golem provider (:class:`GolemProvider`) and the yagna REST layer under it: a thin
client, its retry policies, and the values it sends and receives.

``GolemProvider`` builds negotiation (``_negotiator``), activities (``_session``,
``_batch``, ``_script``), payments (``_payments``) and file transfer (``_storage``) on
top of :class:`YagnaClient`; its events are the records of ``_events``.
"""

from ._activity import ACTIVITY_STATES, ActivityState, ExeScriptCommandResult, RuntimeEvent
from ._activity_api import ActivityApi
from ._client import DEFAULT_API_URL, GsbApi, GsbServices, Identity, YagnaClient, YagnaVersion
from ._demand import (
    ACCEPT_TIMEOUT,
    CHOSEN_PLATFORM,
    DEFAULT_EXPIRATION,
    MAX_EXPIRATION,
    MIN_EXPIRATION,
    Demand,
    VmPayload,
    and_constraints,
    build_demand,
)
from ._exescript import (
    CAPTURE_AT_END,
    INLINE_LIMIT,
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
from ._market import (
    AGREEMENT_STATES,
    PROPOSAL_STATES,
    Agreement,
    AgreementEvent,
    LinearPricing,
    MarketEvent,
    OtherMarketEvent,
    Proposal,
    ProposalEvent,
    ProposalRejectedEvent,
    parse_market_event,
)
from ._market_api import SUCCESS_REASON, MarketApi
from ._payment import (
    DEFAULT_MAINNET,
    DEFAULT_TESTNET,
    Account,
    Allocation,
    DebitNote,
    DebitNoteEvent,
    Invoice,
    InvoiceEvent,
    MarketDecoration,
    payment_platform,
    split_payment_platform,
)
from ._payment_api import PaymentApi
from ._retry import DEFAULT_POLICIES, CallKind, RetryPolicy, is_transient, was_never_sent
from ._events import (
    AgreementApproved,
    AgreementFailed,
    AgreementTerminated,
    BudgetReached,
    CostsSettled,
    DebitNoteAccepted,
    InvoiceAccepted,
    MarketStatus,
    OfferCountered,
    OfferEvent,
    OfferRejected,
    PaymentEvent,
    PaymentRefused,
    RentalEvent,
    YagnaEvent,
)
from ._filters import CheapestFirst, OfferFilter
from ._image import DEFAULT_REGISTRY_URL, resolve_image
from ._scan import CostEstimate, MarketScan, ScannedOffer
from ._settings import Timeouts
from ._storage import Download, SendUrl, Storage, Upload, UploadUrl
from .errors import (
    ApiTimeout,
    AppKeyRefused,
    Gone,
    NotFound,
    NotYagna,
    TransportError,
    YagnaUnreachable,
)
from .provider import GolemProvider, GolemSession
from ._gftp import GsbGftpStorage
from ._gftp_ends import GftpDownload, GftpUpload, TransferFailed

__all__ = (
    "AgreementApproved", "AgreementFailed", "AgreementTerminated", "BudgetReached", "CheapestFirst",
    "CostsSettled", "GftpDownload", "GftpUpload", "GsbGftpStorage", "TransferFailed", "DEFAULT_REGISTRY_URL",
    "DebitNoteAccepted", "Download", "GolemProvider", "GolemSession",
    "InvoiceAccepted", "OfferCountered", "OfferEvent", "OfferFilter", "OfferRejected", "PaymentEvent",
    "PaymentRefused", "RentalEvent", "SendUrl", "Storage", "Timeouts", "Upload", "UploadUrl", "YagnaEvent",
    "resolve_image",
    "CostEstimate", "MarketScan", "MarketStatus", "ScannedOffer",
    "ACCEPT_TIMEOUT", "ACTIVITY_STATES", "AGREEMENT_STATES", "CAPTURE_AT_END", "CHOSEN_PLATFORM",
    "DEFAULT_API_URL", "DEFAULT_EXPIRATION", "DEFAULT_MAINNET", "DEFAULT_POLICIES", "DEFAULT_TESTNET",
    "INLINE_LIMIT", "MAX_EXPIRATION", "MIN_EXPIRATION", "PROPOSAL_STATES", "SUCCESS_REASON",
    "Account", "ActivityApi", "ActivityState", "Agreement", "AgreementEvent", "Allocation",
    "ApiTimeout", "AppKeyRefused", "CallKind", "DebitNote", "DebitNoteEvent", "Demand",
    "ExeScriptCommandResult", "Gone", "GsbApi", "GsbServices", "Identity", "Invoice", "InvoiceEvent",
    "LinearPricing", "MarketApi", "MarketDecoration", "MarketEvent", "NotFound", "NotYagna",
    "OtherMarketEvent", "PaymentApi", "Proposal", "ProposalEvent", "ProposalRejectedEvent",
    "RetryPolicy", "RuntimeEvent", "TransportError", "VmPayload", "YagnaClient", "YagnaUnreachable",
    "YagnaVersion",
    "and_constraints", "build_demand", "command_json", "container_url", "decode_inline_read",
    "deploy_command", "inline_read_command", "inline_send_command", "is_transient",
    "parse_market_event", "payment_platform", "run_command", "script_text",
    "split_payment_platform", "start_command", "terminate_command", "transfer_command",
    "was_never_sent",
)
