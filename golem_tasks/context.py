"""What a worker is handed: the provider it runs on, and batches to fill."""

from __future__ import annotations

from typing import Mapping, Optional

from .batch import Batch, OutputCallback, PathLike
from .providers.base import ProviderInfo


class WorkContext:
    """The worker's handle on one engaged provider.

    Usage::

        def worker(ctx, item):
            results = yield ctx.run("/bin/sh", "-c", f"echo {item} on $(hostname)")
            return results[0].stdout

    Attributes:
        provider: the :class:`ProviderInfo` (``id``, ``name``, ``properties``).
    """

    __slots__ = ("provider",)

    def __init__(self, provider: ProviderInfo) -> None:
        self.provider = provider

    @property
    def provider_id(self) -> str:
        """The provider's id (yapapi's ``ctx.provider_id``)."""
        return self.provider.id

    @property
    def provider_name(self) -> str:
        """The provider's name (yapapi's ``ctx.provider_name``)."""
        return self.provider.name

    def batch(self, timeout: Optional[float] = None) -> Batch:
        """A new, empty :class:`Batch`; yield it to run it. Transfers outside the
        provider's volumes are refused as they are added."""
        return Batch(timeout=timeout, volumes=self.provider.volumes)

    #: yapapi's name for :meth:`batch`.
    new_script = batch

    def run(self, program: PathLike, *args: PathLike, env: Optional[Mapping[str, str]] = None,
            check: bool = True, timeout: Optional[float] = None,
            on_output: Optional[OutputCallback] = None) -> Batch:
        """A batch holding one ``run`` command: ``results = yield ctx.run("date")``."""
        return self.batch(timeout).run(program, *args, env=env, check=check, on_output=on_output)

    def __repr__(self) -> str:
        return f"<WorkContext provider={self.provider.name!r} ({self.provider.id})>"
