"""``POST /erase`` on the stateful API: a caller erases its own sessions; another principal's only as an operator."""

from __future__ import annotations

from agentrail_runtime.erasure import load_erasure_settings

OTHER = {"userArn": "arn:aws:iam::123456789012:user/other"}
OTHER_PRINCIPAL = "iam:arn:aws:iam::123456789012:user/other"
OPERATOR = {"userArn": "arn:aws:iam::123456789012:user/privacy-officer"}


def test_a_caller_erases_its_own_sessions_and_nobody_elses(app, api_event, call, create_session, send):
    # Given two sessions of the caller (one with a turn) and one of another principal
    mine = [create_session(app), create_session(app)]
    send(app, mine[0], "Hello, I am Ada")
    theirs = create_session(app, caller=OTHER)

    # When the caller erases itself
    reply = call(app, api_event("erase", body={}))

    # Then its sessions are counted and gone, and the other principal's session is still there
    assert reply.status == 200, reply.body
    assert reply.body["counts"]["sessions"] == 2
    assert reply.body["counts"]["session_items"] == 1  # the one turn: no state was given, the in-flight slot is empty
    assert reply.body["audit_pseudonym"] is None  # the stateful API keeps no audit trail
    for session_id in mine:
        assert call(app, api_event("get-session", session_id=session_id)).status == 404
    assert call(app, api_event("get-session", session_id=theirs, caller=OTHER)).status == 200
    # And a second erasure finds nothing left
    again = call(app, api_event("erase", body={}))
    assert again.status == 200 and set(again.body["counts"].values()) == {0}


def test_erasing_another_principal_without_being_an_operator_is_403_and_erases_nothing(app, api_event, call, create_session):
    # Given another principal's session
    theirs = create_session(app, caller=OTHER)

    # When the caller names that principal
    reply = call(app, api_event("erase", body={"principal": OTHER_PRINCIPAL}))

    # Then it is refused with the documented code, and the session stays
    assert (reply.status, reply.body["error"]) == (403, "erase_forbidden")
    assert call(app, api_event("get-session", session_id=theirs, caller=OTHER)).status == 200


def test_an_operator_erases_another_principals_sessions(
    agent_env, make_store, make_agent, make_app, api_event, call, create_session
):
    # Given an operator pattern in the function's settings, and another principal's session
    agent_env.setenv("AGENT_ERASE_OPERATORS", '["iam:arn:aws:iam::123456789012:user/privacy-*"]')
    load_erasure_settings.cache_clear()
    try:
        app = make_app(make_agent(make_store()))
    finally:
        load_erasure_settings.cache_clear()
    theirs = create_session(app, caller=OTHER)

    # When the operator erases that principal
    reply = call(app, api_event("erase", body={"principal": OTHER_PRINCIPAL}, caller=OPERATOR))

    # Then the session is gone
    assert reply.status == 200, reply.body
    assert reply.body["counts"]["sessions"] == 1
    assert call(app, api_event("get-session", session_id=theirs, caller=OTHER)).status == 404


def test_the_openapi_document_lists_every_status_of_erase(app):
    # When the document is built, then POST /erase lists its success, its own 403 and the shared answers
    responses = app.get_openapi_schema().paths["/erase"].post.responses
    assert {"200", "400", "403", "415", "500"} <= {str(status) for status in responses}
    assert "erase_forbidden" in responses[403].description
