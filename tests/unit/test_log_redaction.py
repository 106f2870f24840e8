"""Every log line of the runtime passes through redaction: the message, the ``extra`` fields, appended keys and the
exception; Powertools' own fields and ids stay as written; ``AGENT_LOG_REDACTION=false`` turns it off."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from agentrail_runtime.observability import RedactingFormatter, logger
from agentrail_runtime.redaction import default_redactor, redact_data
from agentrail_runtime.redaction.recognizers import Recognizer, Redactor

EMAIL = "ana.lopez@example.com"
CARD = "4111 1111 1111 1111"
KEY = "AKIAIOSFODNN7EXAMPLE"


def test_a_planted_email_in_the_message_is_logged_as_its_marker(stdout_records):
    logger.info(f"refund asked by {EMAIL}")

    (line,) = [r for r in stdout_records() if r.get("level") == "INFO"]
    assert line["message"] == "refund asked by [REDACTED:email]"


def test_extra_fields_are_redacted_at_any_depth_and_numbers_that_are_cards_too(stdout_records):
    logger.info(
        "tool called",
        extra={"event": "tool_call", "arguments": {"card": CARD, "keys": [KEY]}, "number": 4111111111111111, "steps": 3},
    )

    (line,) = stdout_records()
    raw = json.dumps(line)
    assert CARD not in raw and KEY not in raw and "4111111111111111" not in raw
    assert line["arguments"] == {"card": "[REDACTED:card_number]", "keys": ["[REDACTED:aws_access_key]"]}
    assert line["number"] == "[REDACTED:card_number]"
    assert line["steps"] == 3


def test_an_exception_and_its_stack_trace_are_redacted(stdout_records):
    try:
        raise ValueError(f"no account for {EMAIL}")
    except ValueError:
        logger.exception("lookup failed")

    (line,) = stdout_records()
    assert EMAIL not in json.dumps(line)
    assert line["exception"].endswith("ValueError: no account for [REDACTED:email]")
    assert line["stack_trace"]["value"] == "no account for [REDACTED:email]"
    assert line["exception_name"] == "ValueError"


def test_only_what_users_models_and_tools_wrote_is_redacted_an_extra_key_of_any_name_and_an_exceptions_notes(
    stdout_records,
):
    # given: an exception with a note and an extra key of a name the formatter does not know
    error = ValueError("lookup failed")
    error.add_note(f"caller {EMAIL}")
    # when: it is logged
    try:
        raise error
    except ValueError:
        logger.exception("lookup failed", extra={"caller_detail": {"card": CARD}})
    # then: both planted values are redacted; what Powertools wrote is as it wrote it
    (line,) = stdout_records()
    assert EMAIL not in json.dumps(line) and CARD not in json.dumps(line)
    assert line["exception_notes"] == ["caller [REDACTED:email]"]
    assert line["caller_detail"] == {"card": "[REDACTED:card_number]"}
    assert line["exception_name"] == "ValueError" and line["level"] == "ERROR"


def test_appended_keys_are_redacted_but_ids_and_powertools_fields_are_kept(stdout_records):
    logger.append_keys(principal=EMAIL, task_id="task-4111111111111111")
    try:
        logger.info("task started")
    finally:
        logger.remove_keys(["principal", "task_id"])

    (line,) = stdout_records()
    assert line["principal"] == "[REDACTED:email]"
    assert line["task_id"] == "task-4111111111111111"
    assert line["level"] == "INFO" and line["timestamp"][:4].isdigit()


def test_a_line_without_personal_data_is_written_as_powertools_writes_it():
    record = logging.LogRecord("agentrail", logging.INFO, __file__, 1, "turn committed", None, None)
    record.event, record.turn = "turn_committed", 7  # type: ignore[attr-defined]

    redacting = json.loads(RedactingFormatter().format(record))
    plain = json.loads(LambdaPowertoolsFormatter().format(record))

    assert redacting == plain


@pytest.mark.parametrize(
    "text",
    [
        "Write to jane.doe+orders@example.co.uk today.",
        "Reach 2001:db8::ff00:42:8329 over v6.",
        "key AKIAIOSFODNN7EXAMPLE in the logs",
        "token ghp_abcdefghijabcdefghijABCDEFGHIJabcdefgh leaked",
        "config: password=hunterhunter",
        "Use sk-proj-abcdefghijklmnopqrstuvwxyzab for it",
        "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijkl",
    ],
)
def test_the_cheap_gate_lets_through_every_kind_the_recognizers_find(text):
    assert default_redactor().may_hold(text)
    assert "[REDACTED:" in redact_data(text)


def test_a_text_without_digits_at_signs_or_token_prefixes_skips_the_recognizers():
    assert not default_redactor().may_hold("turn committed for the session, the model answered")


def test_a_redactor_derives_its_quick_check_from_its_own_recognizers():
    # given: a recognizer of one's own with a hint, and one without any gate
    tickets = Redactor(recognizers=(Recognizer("ticket", r"\bINC-[A-Z]{6}\b", hints=("inc-",)),))
    employees = Redactor(recognizers=(Recognizer("employee_id", r"\bE\d{6}\b"),))
    # then: a text with the hint may hold a ticket, one without certainly holds none (digits and @ included)
    assert tickets.may_hold("see INC-ABCDEF") and tickets.may_hold("see inc-abcdef")
    assert not tickets.may_hold("mail ana@example.com, card 4111 1111 1111 1111")
    # and a recognizer without hints or digits to gate on makes every text a candidate
    assert employees.may_hold("Employee E123456") and employees.may_hold("no gate at all")


def test_a_recognizers_hints_are_plain_text_matched_without_regard_to_case_and_hint_patterns_are_expressions():
    # given: a hint with regular-expression metacharacters, and a hint pattern
    languages = Redactor(recognizers=(Recognizer("language", r"C\+\+|F#", flags=re.IGNORECASE, hints=("c++", "F#")),))
    versions = Redactor(recognizers=(Recognizer("version", r"\bv\d+\.\d+\b", hint_patterns=(r"v\d",)),))
    # when/then: the hints gate as text (a "c" alone is no candidate), the pattern as an expression
    assert languages.redact("I write c++ and F# daily") == (
        "I write [REDACTED:language] and [REDACTED:language] daily",
        ["language"],
    )
    assert not languages.may_hold("I write cc daily")
    assert versions.redact("shipped v2.10") == ("shipped [REDACTED:version]", ["version"])
    assert not versions.may_hold("shipped version two")


def test_a_colon_without_an_address_around_it_skips_the_recognizers():
    assert not default_redactor().may_hold("model answered: done, stop reason: end_turn, model local:echo")
    assert default_redactor().may_hold("from fe80::abcd")


def test_numbers_too_short_for_any_number_recognizer_skip_the_recognizers():
    assert not default_redactor().may_hold("reasoning step 3 of 12, retry 2")
    assert default_redactor().may_hold("reasoning step 3 of 1234")


def _lines_logged(env: dict[str, str]) -> list[str]:
    code = f"from agentrail_runtime.observability import logger\nlogger.info('card {CARD} of {EMAIL}')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env)
    return run.stdout.splitlines()


def test_agent_log_redaction_false_writes_lines_as_they_are():
    on = _lines_logged({**os.environ})
    off = _lines_logged({**os.environ, "AGENT_LOG_REDACTION": "false"})

    assert "[REDACTED:card_number]" in on[0] and EMAIL not in on[0]
    assert CARD in off[0] and EMAIL in off[0]


def test_what_botocore_logs_at_debug_through_the_lambda_runtimes_root_handler_is_redacted_too():
    # As in Lambda: the runtime's handler is on the root logger before the function's code is imported.
    code = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format='%(name)s %(message)s')\n"
        "import agentrail_runtime.observability\n"
        f"logging.getLogger('botocore.endpoint').debug('Making request with params: %s', {{'body': '{EMAIL} {CARD}'}})\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)

    (line,) = [text for text in run.stdout.splitlines() if text.startswith("botocore.endpoint")]
    assert EMAIL not in line and CARD not in line
    assert "[REDACTED:email]" in line and "[REDACTED:card_number]" in line
