"""How providers and money read in messages (issue 9 item 9)."""

from decimal import Decimal

import pytest

from golem_tasks._format import money, provider_label, short_id, token_of
from golem_tasks.errors import CommandExecutionError

NODE = "0xcc5f" + "0" * 32 + "3a1b"


@pytest.mark.parametrize("amount, text", [
    ("0.005312345678", "0.00531235"),
    ("0.0053", "0.0053"),
    ("0.000202100000000000", "0.0002021"),
    ("0.000000123456789", "0.000000123457"),
    ("123456789.5", "123457000"),
    ("1", "1"),
    ("0", "0"),
    ("2.5E+3", "2500"),
])
def test_money_has_six_significant_digits_in_plain_notation(amount, text):
    assert money(Decimal(amount), "tGLM") == f"{text} tGLM"


def test_the_token_follows_the_platform():
    assert token_of("erc20-hoodi-tglm") == "tGLM"
    assert token_of("erc20-polygon-glm") == "GLM"
    assert money(Decimal("0.01"), token_of("erc20-polygon-glm")) == "0.01 GLM"


def test_providers_read_by_name_with_a_short_id():
    assert short_id(NODE) == "0xcc5f…3a1b"
    assert provider_label("provider-1", NODE) == "provider-1 (0xcc5f…3a1b)"
    assert provider_label(None, NODE) == "0xcc5f…3a1b"
    assert provider_label("local", "local-1") == "local (local-1)"
    assert provider_label("fake-1", "fake-1") == "fake-1"


def test_a_failed_command_names_its_provider():
    error = CommandExecutionError("failed", exit_code=3, provider=NODE, provider_name="provider-1")
    assert "on provider provider-1 (0xcc5f…3a1b)" in str(error)
    assert error.provider == NODE  # the id itself is kept whole
