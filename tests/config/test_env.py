"""The typed environment readers in config/env.py: parsing, defaults and loud failures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_decimal, env_int, env_list, env_str


def test_env_str_returns_the_value_or_the_default():
    assert env_str("NAME", environ={"NAME": "value"}) == "value"
    assert env_str("NAME", "fallback", environ={}) == "fallback"
    # An empty value is a value: the operator set it on purpose.
    assert env_str("NAME", "fallback", environ={"NAME": ""}) == ""


def test_env_str_rejects_a_missing_required_variable_by_name():
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY is required"):
        env_str("DJANGO_SECRET_KEY", environ={})


def test_env_str_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("INFERENSYS_TEST_VARIABLE", "from-os")
    assert env_str("INFERENSYS_TEST_VARIABLE") == "from-os"


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "on"])
def test_env_bool_accepts_true_spellings(raw):
    assert env_bool("FLAG", False, environ={"FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_env_bool_accepts_false_spellings(raw):
    assert env_bool("FLAG", True, environ={"FLAG": raw}) is False


def test_env_bool_uses_the_default_when_unset():
    assert env_bool("FLAG", True, environ={}) is True
    assert env_bool("FLAG", False, environ={}) is False


def test_env_bool_rejects_garbage_with_the_variable_name():
    with pytest.raises(ImproperlyConfigured, match=r"DJANGO_DEBUG='maybe' is not a boolean"):
        env_bool("DJANGO_DEBUG", False, environ={"DJANGO_DEBUG": "maybe"})


def test_env_int_parses_and_defaults():
    assert env_int("ROWS", 5, environ={"ROWS": " 50000 "}) == 50_000
    assert env_int("ROWS", 5, environ={}) == 5
    assert env_int("ROWS", 5, environ={"ROWS": ""}) == 5


def test_env_int_rejects_a_non_integer_with_the_variable_name():
    with pytest.raises(ImproperlyConfigured, match=r"INFERENSYS_INGEST_CHUNK_ROWS='lots' is not an integer"):
        env_int("INFERENSYS_INGEST_CHUNK_ROWS", 1, environ={"INFERENSYS_INGEST_CHUNK_ROWS": "lots"})


def test_env_int_rejects_a_value_below_the_minimum():
    with pytest.raises(
        ImproperlyConfigured, match="INFERENSYS_INGEST_CHUNK_ROWS=10 is below the minimum of 1000"
    ):
        env_int(
            "INFERENSYS_INGEST_CHUNK_ROWS",
            50_000,
            minimum=1_000,
            environ={"INFERENSYS_INGEST_CHUNK_ROWS": "10"},
        )
    assert env_int("N", 0, minimum=1_000, environ={"N": "1000"}) == 1_000


def test_env_decimal_parses_exactly():
    value = env_decimal("RATE", Decimal("1"), environ={"RATE": "0.1"})
    assert value == Decimal("0.1") and isinstance(value, Decimal)
    assert env_decimal("RATE", Decimal("2.5"), environ={}) == Decimal("2.5")
    assert env_decimal("RATE", Decimal("2.5"), environ={"RATE": " "}) == Decimal("2.5")


def test_env_decimal_rejects_garbage_with_the_variable_name():
    with pytest.raises(ImproperlyConfigured, match=r"RATE='1,5' is not a decimal number"):
        env_decimal("RATE", Decimal("1"), environ={"RATE": "1,5"})


def test_env_list_splits_on_commas_and_drops_blanks():
    assert env_list("HOSTS", ["x"], environ={"HOSTS": " a.example.com, b.example.com ,,"}) == [
        "a.example.com",
        "b.example.com",
    ]
    assert env_list("HOSTS", ["x"], environ={"HOSTS": ""}) == []


def test_env_list_returns_a_copy_of_the_default():
    default = ["localhost"]
    result = env_list("HOSTS", default, environ={})
    result.append("mutated")
    assert default == ["localhost"]


def test_env_choice_accepts_a_listed_value_and_defaults():
    assert env_choice("LEVEL", "INFO", ["DEBUG", "INFO"], environ={"LEVEL": "DEBUG"}) == "DEBUG"
    assert env_choice("LEVEL", "INFO", ["DEBUG", "INFO"], environ={}) == "INFO"
    assert env_choice("LEVEL", "INFO", ["DEBUG", "INFO"], environ={"LEVEL": ""}) == "INFO"


def test_env_choice_rejects_an_unlisted_value_naming_the_choices():
    with pytest.raises(ImproperlyConfigured, match=r"INFERENSYS_LOG_LEVEL='LOUD' is not one of DEBUG, INFO"):
        env_choice(
            "INFERENSYS_LOG_LEVEL", "INFO", ["DEBUG", "INFO"], environ={"INFERENSYS_LOG_LEVEL": "LOUD"}
        )
