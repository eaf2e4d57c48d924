"""A whole Golem network on 127.0.0.1: chain stub, daemon, requestor, N providers.

Usage::

    with LocalNet(providers=2) as net:
        os.environ.update(net.env)        # YAGNA_API_URL, YAGNA_APPKEY for any yagna client
        ...                               # and GOLEM_TASKS_REGISTRY_URL for image tags

Everything :meth:`LocalNet.start` starts is stopped by :meth:`LocalNet.stop` (also on
a failed start), in reverse order: provider agents, daemon, chain stub, image registry,
work directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from typing import Dict, List, Mapping, Optional, Sequence

import attrs

from ..providers.gpu import GpuInfo
from ..providers.local import LocalProvider
from ..providers.yagna._image import REGISTRY_VARIABLE
from .exeunit import flex as _flex
from .exeunit.faults import NONE, Faults
from .provider.rest import Rest
from .provider.agent import ProviderAgent
from .stubs.chain import CHAIN_IDS, ChainStub
from .daemon.process import YagnaDaemon
from .provider.negotiator import Negotiator
from .provider.gpu import GPU_RUNTIME
from .provider.offer import OfferSpec
from .stubs.registry import DEFAULT_IMAGES, ImageRegistry, Images
from .daemon.settings import DEFAULT_NETWORK

logger = logging.getLogger(__name__)


@attrs.frozen
class Identity:
    """A node identity on the daemon, with an app key of its own."""

    name: str
    node_id: str
    app_key: str


class LocalNet:
    """The daemon with one requestor identity and ``providers`` provider identities.

    Args:
        providers: how many local providers to run (0 is allowed: daemon and chain only).
        negotiators: one per provider (offer and rules); defaults to :class:`Negotiator()`.
        sandbox: the local sandbox kind exe-units run commands in ("bwrap", "host", or
            None: bwrap when it works here); see :class:`LocalProvider`.
        workdir: keep the daemon's data here (kept afterwards); default: a temporary
            directory, removed by :meth:`stop`.
        binary: the yagna binary (see :func:`.daemon.find_yagna`).
        debug: daemon debug logging.
        images: the ``name:tag`` VM images the loopback :class:`ImageRegistry` knows
            (the examples' tags by default); other tags get the registry's 404. A
            mapping of tags to GVMI files makes the registry serve them and the local
            providers run commands in them.
        network: the payment network the chain stub plays and the default offers take
            (``hoodi``, the default testnet; any of :data:`.stubs.chain.CHAIN_IDS`).
        gpus: one more provider per card, after the others, offering it through the
            ``vm-nvidia`` runtime (:class:`OfferSpec` ``gpu``; no CUDA: its commands run
            in the local sandbox too).
        faults: test knobs by provider index, e.g. ``{3: Faults(slowdown=20)}`` for a
            ``provider-3`` whose commands take 20 times as long (:class:`.exeunit.faults.Faults`).

    Attributes:
        registry: the loopback image registry (its URL is in :attr:`env`).
        timings: seconds per start-up phase (``chain``, ``daemon``, ``identities``,
            ``restart``, ``providers``, ``total``).
    """

    def __init__(
        self,
        providers: int = 2,
        *,
        negotiators: Optional[Sequence[Negotiator]] = None,
        sandbox: Optional[str] = None,
        workdir: Optional[str] = None,
        binary: Optional[str] = None,
        debug: bool = False,
        images: Images = DEFAULT_IMAGES,
        network: str = DEFAULT_NETWORK,
        gpus: Sequence[GpuInfo] = (),
        faults: Optional[Mapping[int, Faults]] = None,
    ) -> None:
        if providers < 0:
            raise ValueError("providers must be >= 0")
        self.faults: Dict[int, Faults] = dict(faults or {})
        if any(not 0 <= index < providers for index in self.faults):
            raise ValueError(f"faults name providers {sorted(self.faults)}; there are {providers} (0..{providers - 1})")
        if network not in CHAIN_IDS:
            raise ValueError(f"unknown payment network {network!r}: use one of {', '.join(CHAIN_IDS)}")
        self.network = network
        if negotiators is not None and len(negotiators) != providers:
            raise ValueError(f"{len(negotiators)} negotiators for {providers} providers")
        self.provider_count = providers + len(gpus)
        self.negotiators = (
            list(negotiators)
            if negotiators is not None
            else [Negotiator(offer=OfferSpec(platform=_platform(network))) for _ in range(providers)]
        ) + [Negotiator(offer=OfferSpec(platform=_platform(network), runtime=GPU_RUNTIME, gpu=card))
             for card in gpus]
        self._own_workdir = workdir is None
        self.workdir = workdir or ""
        self.sandbox = sandbox
        self.binary = binary
        self.debug = debug
        self.images: Images = dict(images) if isinstance(images, Mapping) else tuple(images)
        self.registry: Optional[ImageRegistry] = None
        self.chain: Optional[ChainStub] = None
        self.daemon: Optional[YagnaDaemon] = None
        self.requestor: Optional[Identity] = None
        self.providers: List[Identity] = []
        self.agents: List[ProviderAgent] = []
        self._sandboxes: List[LocalProvider] = []
        self.timings: Dict[str, float] = {}

    @property
    def env(self) -> Dict[str, str]:
        """``YAGNA_API_URL`` and ``YAGNA_APPKEY`` of the requestor, and
        ``GOLEM_TASKS_REGISTRY_URL`` of the loopback image registry."""
        if self.daemon is None or self.registry is None:
            raise RuntimeError("local network not started")
        return {**self.daemon.settings.client_environ(), REGISTRY_VARIABLE: self.registry.url}

    @property
    def api_url(self) -> str:
        return self.env["YAGNA_API_URL"]

    def start(self) -> "LocalNet":
        """Start everything; on any failure stop what was started and re-raise."""
        if self.daemon is not None:
            raise RuntimeError("local network already started")
        started = time.monotonic()
        try:
            self._start(started)
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - started
        logger.info("local network up in %.2f s: %s", self.timings["total"], self.timings)
        return self

    def _phase(self, name: str, since: float) -> float:
        now = time.monotonic()
        self.timings[name] = now - since
        return now

    def _start(self, t: float) -> None:
        self.providers = []
        if self.provider_count:
            _flex.require()  # exe-units speak flexbuffers: fail before starting anything
        if self._own_workdir:
            self.workdir = tempfile.mkdtemp(prefix="golem-localnet-")
        self.registry = ImageRegistry(self.images).start()
        self.chain = ChainStub(chain_id=CHAIN_IDS[self.network]).start()
        t = self._phase("chain", t)
        self.daemon = YagnaDaemon(
            self.workdir, rpc_url=self.chain.url, network=self.network, binary=self.binary, debug=self.debug
        )
        self.daemon.start()
        t = self._phase("daemon", t)
        key = self.daemon.settings.app_key
        me = Rest(self.daemon.settings.api_url, key, who="requestor").get("/me")
        self.requestor = Identity("requestor", me["identity"], key)
        for i in range(self.provider_count):
            name = f"provider-{i}"
            node_id = self.daemon.create_identity(name)
            self.providers.append(
                Identity(name, node_id, self.daemon.create_app_key(name, node_id))
            )
        t = self._phase("identities", t)
        if self.providers:
            # The net layer binds /net/<id> only for identities present at start-up.
            self.daemon.restart()
        t = self._phase("restart", t)
        for index, (identity, negotiator) in enumerate(zip(self.providers, self.negotiators)):
            sandbox = LocalProvider(
                os.path.join(self.workdir, "sandboxes", identity.name), sandbox=self.sandbox
            )
            self._sandboxes.append(sandbox)
            agent = ProviderAgent(
                self.daemon.settings.api_url,
                identity.app_key,
                node_id=identity.node_id,
                name=identity.name,
                negotiator=negotiator,
                gsb_url=self.daemon.settings.gsb_url,
                sandbox=sandbox,
                faults=self.faults.get(index, NONE),
            )
            self.agents.append(agent)
            agent.start()
        self._phase("providers", t)

    def stop(self) -> None:
        """Stop every process and thread that was started. Idempotent."""
        for agent in self.agents:
            agent.request_stop()
        for agent in self.agents:
            agent.join()
        self.agents.clear()
        for sandbox in self._sandboxes:
            sandbox.close()
        self._sandboxes.clear()
        if self.daemon is not None:
            self.daemon.close()
            self.daemon = None
        if self.chain is not None:
            self.chain.stop()
            self.chain = None
        if self.registry is not None:
            self.registry.stop()
            self.registry = None
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""

    def __enter__(self) -> "LocalNet":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _platform(network: str) -> str:
    token = "glm" if network in ("polygon", "mainnet") else "tglm"
    return f"erc20-{network}-{token}"
