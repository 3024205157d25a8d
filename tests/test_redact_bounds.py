"""Redaction at its boundaries: a bare citizen ID as a whole field, the shortest secret,
a stack trace, an exception a handler could render again, values that are not text.
"""

from __future__ import annotations

import logging
import sys

from gateway.security.redact import MIN_SECRET_LENGTH, RedactingFilter, Redactor
from tests.support import make_pid

PID = make_pid("370010045678")  # made here: no person of the test data
MASKED = f"{PID[0]}-xxxx-xxxxx-x{PID[11]}-{PID[12]}"


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("lc2_gateway.test", logging.WARNING, __file__, 1, msg, None, None)


def test_a_field_that_is_exactly_a_citizen_id_is_masked() -> None:
    r = Redactor()
    assert r.value({"subject": PID}) == {"subject": MASKED}
    assert r.value({"subject": PID, "n": 1, "none": None}) == {
        "subject": MASKED,
        "n": 1,
        "none": None,
    }
    assert r.value([PID, 3]) == [MASKED, 3] and r.value(PID) == MASKED


def test_the_shortest_secret_is_hidden_and_a_shorter_value_is_not() -> None:
    assert MIN_SECRET_LENGTH == 6
    r = Redactor()
    r.add_secrets(["s3cr3t", "tiny5"])
    assert r.text("pw=s3cr3t") == "pw=[secret]"
    assert r.value({"pw": "s3cr3t"}) == {"pw": "[secret]"}  # a six-character field, whole
    assert r.text("pw=tiny5") == "pw=tiny5"  # five characters would blank ordinary words


def test_a_stack_trace_is_redacted() -> None:
    rec = _record("looked up")
    rec.stack_info = f"Stack (most recent call last):\n  lookup({PID!r})"
    assert RedactingFilter(Redactor()).filter(rec)
    assert PID not in rec.stack_info and MASKED in rec.stack_info


def test_no_handler_can_render_the_exception_again_in_clear() -> None:
    rec = _record("failed")
    try:
        raise LookupError(f"no row for {PID}")
    except LookupError:
        rec.exc_info = sys.exc_info()
    assert RedactingFilter(Redactor()).filter(rec)
    # a formatter of another library may render exc_info itself, ignoring exc_text
    assert rec.exc_info is None
    assert rec.exc_text is not None and PID not in rec.exc_text and MASKED in rec.exc_text
    assert "LookupError" in rec.exc_text


def test_values_that_are_not_text_come_back_as_they_are() -> None:
    r = Redactor()
    marker = object()
    assert r.value(marker) is marker
    assert r.value({1, 2}) == {1, 2}
    fields = {"obj": marker, "n": 1.5, "flag": True}
    assert r.value(fields) is fields


def test_a_long_secret_does_not_let_a_bare_citizen_id_through() -> None:
    r = Redactor()
    r.add_secrets(["a-rather-long-database-password"])  # longer than a citizen ID
    assert r.text(PID) == MASKED
    assert r.value({"subject": PID}) == {"subject": MASKED}


def test_text_of_a_str_subclass_is_redacted_too() -> None:
    class Name(str):
        pass

    assert Redactor().value(Name(f"id {PID}")) == f"id {MASKED}"


def test_the_shortest_of_several_secrets_sets_what_is_looked_at() -> None:
    r = Redactor()
    r.add_secrets(["k" * MIN_SECRET_LENGTH, "a-much-longer-secret"])
    short = "pw=" + "k" * MIN_SECRET_LENGTH  # shorter than the longer secret and than an ID
    assert r.text(short) == "pw=[secret]"


def test_an_empty_bound_value_leaves_empty_quotes_alone() -> None:
    from gateway.security.redact import redact_values

    message = "syntax error at or near '' at line 1"
    assert redact_values(message, [""]) == message
    assert redact_values("value 'ab' too long", ["ab"]) == "value <parameter> too long"


def test_a_value_of_the_shortest_bare_length_is_removed_unquoted() -> None:
    from gateway.security.redact import MIN_VALUE_LENGTH, redact_values

    value = "z" * MIN_VALUE_LENGTH
    assert redact_values(f"value {value} too long", [value]) == "value <parameter> too long"


def test_none_and_booleans_bound_as_parameters_leave_their_words_alone() -> None:
    from gateway.security.redact import redact_values

    message = "None of True or False matched"
    assert redact_values(message, [None, True, False]) == message
