"""A whole Golem network on one machine, on 127.0.0.1 only.

The real yagna daemon (from the optional ``golem-node`` package) runs offline; a
loopback JSON-RPC stub stands in for the payment chain; local provider agents publish
offers, negotiate, approve agreements, run activities in the local sandbox through an
exe-unit on the daemon's GSB, and bill them. Any yagna client can use it::

    from golem_tasks.localnet import LocalNet

    with LocalNet(providers=2) as net:
        os.environ.update(net.env)      # YAGNA_API_URL, YAGNA_APPKEY, GOLEM_TASKS_REGISTRY_URL
        ...

From a shell: ``python -m golem_tasks.localnet up --providers 2``. A loopback image
registry resolves the usual tags (``golem/alpine:latest``...) and answers 404 for others,
like the public one; tags given with a GVMI file are served, and exe-units run commands
inside that image (others run in the local sandbox on this machine's root file system).
Not played: payments are never mined.
"""

from .stubs.chain import ChainStub
from .daemon.process import YagnaDaemon, find_yagna
from .errors import DaemonNotInstalled, LocalNetError
from .exeunit.faults import Faults
from .provider.negotiator import Negotiator
from .network import Identity, LocalNet
from .provider.offer import OfferSpec
from .stubs.registry import DEFAULT_IMAGES, ImageRegistry
from .daemon.settings import DaemonSettings

__all__ = (
    "ChainStub",
    "DaemonNotInstalled",
    "DaemonSettings",
    "DEFAULT_IMAGES",
    "Faults",
    "Identity",
    "ImageRegistry",
    "LocalNet",
    "LocalNetError",
    "Negotiator",
    "OfferSpec",
    "YagnaDaemon",
    "find_yagna",
)
