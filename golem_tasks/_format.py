"""How providers and money read in messages: a provider by name with a short id, an
amount rounded to 6 significant digits with its token (issue 9 item 9).

One place for both, so errors, logs and the summary say the same thing the same way.
The values themselves (``Decimal`` amounts, full ids) are never rounded: only text.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Optional, Union

#: Significant digits an amount is shown with.
MONEY_DIGITS = 6
#: Ids longer than this are shortened to their head and tail.
_LONG_ID = 14


def short_id(provider_id: str) -> str:
    """``0xcc5f…3a1b`` for a long hex id (node ids are 42 characters); short ids as they are."""
    if len(provider_id) <= _LONG_ID:
        return provider_id
    return f"{provider_id[:6]}\u2026{provider_id[-4:]}"


def provider_label(name: Optional[str], provider_id: Optional[str]) -> str:
    """A provider as people read it: ``provider-1 (0xcc5f…3a1b)``; the short id alone
    when it has no name, the name alone when it has no id (or the name is the id)."""
    if not provider_id:
        return name or "a provider"
    short = short_id(provider_id)
    if not name or name == provider_id:
        return short
    return f"{name} ({short})"


def token_of(platform: str) -> str:
    """The token of a payment platform as people write it: ``erc20-hoodi-tglm`` ->
    ``tGLM``, ``erc20-polygon-glm`` -> ``GLM``."""
    return "tGLM" if platform.lower().endswith("tglm") else "GLM"


def money(amount: Union[Decimal, int, str], token: str = "GLM") -> str:
    """``0.00531235 tGLM``: :func:`amount_text` with its token."""
    return f"{amount_text(amount)} {token}"


def amount_text(amount: Union[Decimal, int, str], rounding: str = ROUND_HALF_EVEN) -> str:
    """``0.00531235``: ``amount`` rounded to 6 significant digits, in plain notation
    (never an exponent), trailing zeros dropped; for a table column or a setting's value.
    A value to set as a limit that ``amount`` must fit under wants ``ROUND_CEILING``."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        return str(amount)
    if not value.is_finite():
        return str(value)
    if value.is_zero():
        return "0"
    exponent = value.adjusted() - (MONEY_DIGITS - 1)
    rounded = value.quantize(Decimal(1).scaleb(exponent), rounding=rounding)
    text = f"{rounded:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
