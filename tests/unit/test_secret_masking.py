"""Masking of fetched secrets: in log lines (as JSON escapes them too) and in what the agent loop keeps."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from agentrail_runtime import observability
from agentrail_runtime.agent.secrets import mask_secrets
from agentrail_runtime.observability import MaskingFormatter, RedactingFormatter, logger, never_log


def test_a_value_never_to_log_is_masked_in_the_message_any_key_and_an_exceptions_trace_even_when_json_escapes_it(
    stdout_records,
):
    # given: a secret with characters JSON escapes (a quote, a backslash, a non-ASCII letter)
    value = 'pa"ss\\wörd-31c7e0a5'
    never_log(value)
    # when: it is logged in the message, in a key, and in an exception
    logger.info(f"connecting with {value}", extra={"credential": value, "nested": {"list": [value]}})
    try:
        raise RuntimeError(f"refused {value}")
    except RuntimeError:
        logger.exception("the call failed")
    # then: no line carries it in any form; each line still says what happened
    lines = [json.dumps(record, ensure_ascii=False) for record in stdout_records()]
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    assert len(lines) == 2
    assert [line for line in lines if any(form in line for form in forms)] == []
    assert "connecting with **********" in lines[0] and "refused **********" in lines[1]


@pytest.mark.parametrize("formatter", [MaskingFormatter, RedactingFormatter], ids=["masking", "redacting"])
def test_a_value_never_to_log_used_as_a_key_at_the_top_or_nested_is_masked_by_either_formatter(formatter, monkeypatch):
    # given: a fetched secret (with characters JSON escapes) that a tool's code put in a key, at the top of the
    # record's extra fields and nested in one of them
    monkeypatch.setattr(observability, "_SECRETS", {})
    value = 'k"ey\\wörd-9f2c41'
    never_log(value)
    record = logging.LogRecord("agentrail", logging.INFO, __file__, 1, "lookup", None, None)
    record.__dict__.update({value: 1, "d": {value: 2, "list": [{value: 3}]}, "task_id": f"t-{value}"})
    # when: the formatter writes the line
    line = formatter().format(record)
    # then: the line carries the secret in no form; the masked keys and the rest are still there
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    assert [form for form in forms if form in line] == []
    written = json.loads(line)
    assert written["**********"] == 1
    assert written["d"] == {"**********": 2, "list": [{"**********": 3}]}
    assert written["task_id"] == "t-**********"
    assert written["message"] == "lookup"


def test_mask_secrets_masks_every_string_and_secret_str_of_a_result_and_counts_them(monkeypatch):
    # given: a value fetched in this execution environment (in a registry of this test's own)
    monkeypatch.setattr(observability, "_SECRETS", {})
    never_log("tok-5b1d9e")
    result = {"key": "tok-5b1d9e", "header": "Bearer tok-5b1d9e", "list": [SecretStr("x"), 3, "plain"], "tok-5b1d9e": 1}
    # when: the loop masks a tool's result
    masked, count = mask_secrets(result)
    # then: every occurrence is gone, the rest is as it was
    assert masked == {
        "key": "**********",
        "header": "Bearer **********",
        "list": ["**********", 3, "plain"],
        "**********": 1,
    }
    assert count == 4


def test_with_log_redaction_off_a_fetched_secret_logged_through_the_root_loggers_handler_is_still_masked():
    # given: as in Lambda, the runtime's handler is on the root logger before the function's code is imported;
    # personal data is not redacted (AGENT_LOG_REDACTION=false), and a tool fetched a secret
    code = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.DEBUG, format='%(name)s %(message)s')\n"
        "from agentrail_runtime.observability import never_log\n"
        "never_log('tok-77c0ffee51')\n"
        "logging.getLogger('botocore.endpoint').debug('Making request with params: %s', {'auth': 'tok-77c0ffee51'})\n"
    )
    env = {**os.environ, "AGENT_LOG_REDACTION": "false"}
    # when: botocore logs it at DEBUG
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env=env)
    # then: the line says what happened, with the secret masked
    (line,) = [text for text in run.stdout.splitlines() if text.startswith("botocore.endpoint")]
    assert "tok-77c0ffee51" not in line
    assert "{'auth': '**********'}" in line
