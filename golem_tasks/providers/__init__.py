"""Providers: where commands run. ``from_name`` builds one from a name or the environment."""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any, Dict, List, Optional, Tuple, Union

from ..errors import ConfigurationError
from .base import Provider

logger = logging.getLogger(__name__)

#: The names ``Golem(provider=...)`` and ``GOLEM_TASKS_PROVIDER`` accept.
PROVIDER_NAMES = ("local", "golem", "fake")


def from_name(provider: Union[Provider, str, None], image: Optional[str] = None,
              options: Optional[Dict[str, Any]] = None, *, golem_options: Optional[Dict[str, Any]] = None
              ) -> Tuple[Provider, bool]:
    """The provider to use, and whether the caller created it (and so must close it).

    ``golem_options`` apply only when the Golem provider is built (for example
    ``provider_record``, which the other providers have no use for). The environment
    (``GOLEM_TASKS_PROVIDER``, ``GOLEM_TASKS_SANDBOX``, ``YAGNA_*``) is read here, when a
    provider is built, never at import."""
    options = dict(options or {})
    if isinstance(provider, Provider):
        if options:
            raise ConfigurationError("provider_options only apply to a provider given by name; "
                                     "configure the Provider instance itself")
        return provider, False
    name = provider if provider is not None else os.environ.get("GOLEM_TASKS_PROVIDER", "local")
    if name not in PROVIDER_NAMES:
        raise ConfigurationError(f"unknown provider {name!r}: pass one of {', '.join(PROVIDER_NAMES)} "
                                 f"(or set GOLEM_TASKS_PROVIDER), or a Provider instance")
    if name == "local":
        from .local import LocalProvider
        _check_options(LocalProvider, name, options)
        options.setdefault("sandbox", os.environ.get("GOLEM_TASKS_SANDBOX") or None)
        if image:
            options.setdefault("image", image)  # a GVMI file or a root-fs directory runs; a tag is logged
        return LocalProvider(**options), True
    if name == "golem":
        from .yagna import GolemProvider
        for option, value in (golem_options or {}).items():
            options.setdefault(option, value)
        _check_options(GolemProvider, name, options)
        if image:
            options["image_tag" if ":" in image else "image_hash"] = image
        return GolemProvider.from_env(**options), True
    from ..testing import FakeProvider
    _check_options(FakeProvider, name, options)
    return FakeProvider(**options), True


def providers_taking(option: str) -> List[str]:
    """The names of the providers whose ``provider_options`` include ``option``, the
    golem provider first."""
    from ..testing import FakeProvider
    from .local import LocalProvider
    from .yagna import GolemProvider
    classes = (("golem", GolemProvider), ("local", LocalProvider), ("fake", FakeProvider))
    return [name for name, cls in classes if option in inspect.signature(cls).parameters]


def the_providers(names: List[str]) -> str:
    """``the golem provider``, ``the golem and fake providers``, ``the golem, local and fake providers``."""
    if len(names) == 1:
        return f"the {names[0]} provider"
    return f"the {', '.join(names[:-1])} and {names[-1]} providers"


def _check_options(cls: type, name: str, options: Dict[str, Any]) -> None:
    """Refuse options the provider does not take. Checked against the signature, not by
    catching TypeError from the constructor, which would hide the provider's own bugs."""
    try:
        inspect.signature(cls).bind_partial(**options)
    except TypeError as exc:
        accepted = ", ".join(p for p in inspect.signature(cls).parameters if p not in ("self", "args", "kwargs"))
        stray = next(iter(set(options) - set(inspect.signature(cls).parameters)), "")
        owners = [owner for owner in providers_taking(stray) if owner != name] if stray else []
        hint = _HINTS.get((name, stray)) or (
            f". {stray} is an option of {the_providers(owners)} (provider=\"{owners[0]}\")" if owners else "")
        raise ConfigurationError(f"provider_options do not fit the {name} provider: {exc}; "
                                 f"it takes {accepted}{hint}") from None


#: What to do instead, for options that belong to another provider.
_HINTS = {
    ("local", "gpu"): ". The local provider runs commands on this machine's CPU; a GPU job's negotiation "
                      "is played offline by localnet's GPU providers (golem-tasks localnet up --gpu MODEL, "
                      "then provider='golem' with gpu=True)",
}
