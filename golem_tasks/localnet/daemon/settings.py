"""The environment that keeps a yagna 0.17.6 daemon on 127.0.0.1 and off DNS.

Every variable here closes one way the daemon would otherwise reach the internet or
block start-up; research/yagna-offline.md has the logs behind each one.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

import attrs

from .ports import LOOPBACK

#: Networks the erc20 driver knows. Each gets ``<NET>_GETH_ADDR`` pinned to loopback so
#: the driver never does its DNS TXT look-up ``<net>.rpc-node.dev.golem.network``.
PAYMENT_NETWORKS = (
    "mainnet",
    "polygon",
    "holesky",
    "hoodi",
    "sepolia",
    "amoy",
    "goerli",
    "mumbai",
    "rinkeby",
)

#: The payment network a local network runs: the default testnet of golem_tasks,
#: golem-js and the yagna 0.17.6 CLI (Ethereum's Holesky is shut down).
DEFAULT_NETWORK = "hoodi"

#: A loopback port nothing listens on: "connection refused" at once, never a look-up.
DEAD_URL = f"http://{LOOPBACK}:9"

#: Variables of the caller's environment that would redirect the daemon or its CLI
#: (a user's own YAGNA_APPKEY, GSB_URL, proxies ...). They are dropped, then set again.
_INHERITED_PREFIXES = ("YAGNA_", "YA_", "GSB_", "CENTRAL_NET", "MAX_REST", "RUST_LOG")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def _clean(base: Mapping[str, str]) -> Dict[str, str]:
    env = {}
    for key, value in base.items():
        upper = key.upper()
        if (
            upper.startswith(_INHERITED_PREFIXES)
            or upper in _PROXY_VARS
            or upper.endswith("_GETH_ADDR")
        ):
            continue
        env[key] = value
    return env


@attrs.frozen(kw_only=True)
class DaemonSettings:
    """Where one daemon keeps its data and listens.

    Attributes:
        data_dir: the daemon's data directory (sqlite databases, keys, logs).
        api_port: REST port on 127.0.0.1.
        gsb_port: GSB router port on 127.0.0.1; at most 9999 (see :mod:`._ports`).
        app_key: the requestor's app key, installed at start-up (``YAGNA_AUTOCONF_APPKEY``).
        rpc_url: the Ethereum JSON-RPC for ``network``; ``None`` means a dead port, so
            allocations fail but nothing else does.
        network: the payment network whose RPC is ``rpc_url`` (hoodi by default).
        payment_cycle: how often the daemon's payment cycle sends what is due
            (``PAYMENT_CYCLE_DEFAULT_INTERVAL``; yagna's default is 5 min). Short, so
            debit notes accepted mid-agreement are paid while the work runs.
        debug: log at debug level.
    """

    data_dir: str
    api_port: int
    gsb_port: int = attrs.field(validator=attrs.validators.le(9999))
    app_key: str
    rpc_url: Optional[str] = None
    network: str = attrs.field(default=DEFAULT_NETWORK, validator=attrs.validators.in_(PAYMENT_NETWORKS))
    payment_cycle: str = "5s"
    debug: bool = False

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    @property
    def gsb_url(self) -> str:
        return f"tcp://{LOOPBACK}:{self.gsb_port}"

    def cli_environ(self, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        """The environment for ``yagna`` CLI commands that talk to this daemon."""
        env = _clean(os.environ if base is None else base)
        env.update(YAGNA_DATADIR=self.data_dir, GSB_URL=self.gsb_url, YAGNA_API_URL=self.api_url)
        return env

    def daemon_environ(self, base: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        """The environment for ``yagna service run``."""
        env = self.cli_environ(base)
        env.update(
            # Central net with the daemon's own GSB router as hub: no relay, no SRV look-up.
            YA_NET_TYPE="central",
            CENTRAL_NET_HOST=f"{LOOPBACK}:{self.gsb_port}",
            YAGNA_AUTOCONF_APPKEY=self.app_key,
            # The release check (api.github.com, no switch to turn it off) fails fast on a
            # dead proxy instead of resolving a name; NO_PROXY keeps the RPC stub direct.
            HTTP_PROXY=DEAD_URL,
            HTTPS_PROXY=DEAD_URL,
            NO_PROXY=f"{LOOPBACK},localhost",
        )
        env["PAYMENT_CYCLE_DEFAULT_INTERVAL"] = self.payment_cycle
        if self.debug:
            env["RUST_LOG"] = "debug"
        for name in PAYMENT_NETWORKS:
            env[f"{name.upper()}_GETH_ADDR"] = DEAD_URL
        if self.rpc_url:
            env[f"{self.network.upper()}_GETH_ADDR"] = self.rpc_url
        return env

    def client_environ(self) -> Dict[str, str]:
        """What a yagna client (yapapi, golem-js, golem_tasks) needs to use this daemon."""
        return {"YAGNA_API_URL": self.api_url, "YAGNA_APPKEY": self.app_key}
