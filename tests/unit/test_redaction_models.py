"""``redacted_model`` and ``redacted_json``: the one way a store keeps a pydantic record with ``store_redacted``."""

from __future__ import annotations

from agentrail_runtime.models.base import Message
from agentrail_runtime.redaction.models import redacted_json, redacted_model


def test_a_redacted_record_keeps_its_ids_and_roles_and_loses_the_email_as_a_model_and_as_json_alike():
    # given a stored message with an email address in its text
    message = Message.user("Write to ana.lopez@example.com")

    # when it is redacted as a model and as JSON
    as_model = redacted_model(message)
    as_json = redacted_json(message)

    # then both hold the marker, not the address; the role stays; and the JSON reads back as the model
    assert as_model.text == "Write to [REDACTED:email]"
    assert as_model.role == "user"
    assert Message.model_validate_json(as_json) == as_model
