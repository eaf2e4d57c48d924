"""Free TCP ports on 127.0.0.1.

The daemon's GSB router port must have at most four digits: yagna's central-net host
parser only accepts ``host:[0-9]{1,4}`` and otherwise falls back to a DNS SRV look-up
(research/yagna-offline.md). The kernel's ephemeral range (port 0) is 32768 and up, so
ports are picked at random from 1024-9999 and probed by binding.
"""

from __future__ import annotations

import random
import socket
from typing import AbstractSet

LOOPBACK = "127.0.0.1"


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(*, low: int = 1024, high: int = 9999, avoid: AbstractSet[int] = frozenset()) -> int:
    """A port in ``[low, high]`` that could be bound on 127.0.0.1 just now.

    Another process may still take it before the daemon does; callers that start a
    daemon retry with new ports when it fails to bind.
    """
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(low, high)
        if port not in avoid and _bindable(port):
            return port
    raise OSError(f"no free port on {LOOPBACK} in {low}-{high}")
