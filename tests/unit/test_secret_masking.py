"""Masking of fetched secrets: in log lines (as JSON escapes them too) and in what the agent loop keeps."""

from __future__ import annotations

import json

from pydantic import SecretStr

from agentrail_runtime.agent.secrets import mask_secrets
from agentrail_runtime.observability import logger, never_log


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


def test_mask_secrets_masks_every_string_and_secret_str_of_a_result_and_counts_them():
    from agentrail_runtime.agent import secrets

    # given: a value fetched in this execution environment
    secrets._FETCHED.add("tok-5b1d9e")
    result = {"key": "tok-5b1d9e", "header": "Bearer tok-5b1d9e", "list": [SecretStr("x"), 3, "plain"], "tok-5b1d9e": 1}
    # when: the loop masks a tool's result
    try:
        masked, count = mask_secrets(result)
    finally:
        secrets._FETCHED.discard("tok-5b1d9e")
    # then: every occurrence is gone, the rest is as it was
    assert masked == {
        "key": "**********",
        "header": "Bearer **********",
        "list": ["**********", 3, "plain"],
        "**********": 1,
    }
    assert count == 4
