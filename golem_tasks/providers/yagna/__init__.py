"""The Golem provider (:class:`GolemProvider`) on a yagna daemon, and what its users need:
its settings, offer filters, storage seam, events and errors.

The layers under it are sub-packages, one per yagna API, each with its REST calls
(``api``) and values (``models``): :mod:`.market`, :mod:`.activity`, :mod:`.payment`,
plus :mod:`.transfer` (files) and ``_http`` (transport, retries, JSON). ``GolemProvider``
builds negotiation (``market.negotiator``), sessions (``_session``), payments
(``payment.payments``) and storage (``transfer``) on :class:`._client.YagnaClient`.
"""

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
    SpendUpdated,
    YagnaEvent,
)
from ._image import DEFAULT_REGISTRY_URL, resolve_image
from ._settings import Timeouts
from .errors import ApiTimeout, AppKeyRefused, Gone, NotFound, NotYagna, TransportError, YagnaUnreachable
from .provider import GolemProvider, GolemSession
from ._http.retry import CallKind, DEFAULT_POLICIES, RetryPolicy
from .market.demand import VmPayload
from .market.filters import CheapestFirst, OfferFilter
from .market.models import LinearPricing, Proposal
from .market.scan import CostEstimate, MarketScan, ScannedOffer
from .transfer.storage import Download, SendUrl, Storage, Upload, UploadUrl
from .transfer.gftp import GsbGftpStorage
from .transfer.gftp_ends import TransferFailed

__all__ = (
    "AgreementApproved", "AgreementFailed", "AgreementTerminated", "ApiTimeout", "AppKeyRefused",
    "BudgetReached", "CallKind", "CheapestFirst", "CostsSettled", "DEFAULT_POLICIES", "DEFAULT_REGISTRY_URL",
    "DebitNoteAccepted", "Download", "GolemProvider", "GolemSession", "Gone", "GsbGftpStorage",
    "InvoiceAccepted", "LinearPricing", "NotFound", "NotYagna", "OfferCountered", "OfferEvent", "OfferFilter",
    "OfferRejected", "PaymentEvent", "PaymentRefused", "Proposal", "RentalEvent", "RetryPolicy", "SendUrl",
    "SpendUpdated", "Storage", "Timeouts", "TransferFailed", "TransportError", "Upload", "UploadUrl", "VmPayload",
    "YagnaEvent", "YagnaUnreachable",
    "CostEstimate", "MarketScan", "MarketStatus", "ScannedOffer", "resolve_image",
)
