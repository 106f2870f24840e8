"""Who may erase, and the audit pseudonym: the rules of agentrail_runtime.erasure without any store."""

from __future__ import annotations

import pytest

from agentrail_runtime.approvals.store import AuditLog
from agentrail_runtime.erasure import ErasureCounts, ErasureForbidden, ErasureSettings, PrincipalEraser, pseudonym

ALICE = "iam:arn:aws:iam::123456789012:user/alice"


def test_a_pseudonym_is_stable_for_one_salt_differs_across_salts_and_does_not_contain_the_principal():
    first, again, other_salt = pseudonym(ALICE, "salt-a"), pseudonym(ALICE, "salt-a"), pseudonym(ALICE, "salt-b")

    assert first == again != other_salt
    assert first.startswith("erased:") and len(first) == len("erased:") + 32
    assert "alice" not in first


@pytest.mark.parametrize(
    ("caller", "groups", "allowed"),
    [
        (ALICE, (), True),  # the principal itself
        ("iam:arn:aws:iam::123456789012:user/bob", (), False),
        ("iam:arn:aws:iam::123456789012:user/bob", ("operators",), True),  # the Cognito operator group
        ("iam:arn:aws:iam::123456789012:role/PrivacyOperator", (), True),  # an operator pattern
        ("iam:arn:aws:sts::123456789012:assumed-role/PrivacyOperator/session-1", (), True),  # the role's session
        ("iam:arn:aws:sts::123456789012:assumed-role/Other/PrivacyOperator", (), False),
    ],
)
def test_only_the_principal_itself_or_an_operator_may_erase(caller, groups, allowed):
    eraser = PrincipalEraser(settings=ErasureSettings(operators=("iam:arn:aws:iam::123456789012:role/PrivacyOperator",)))

    assert eraser.may_erase(caller, ALICE, groups) is allowed
    if not allowed:
        with pytest.raises(ErasureForbidden):
            eraser.erase_as(caller, ALICE, groups)


def test_an_eraser_with_an_audit_trail_and_no_salt_refuses_before_erasing_anything():
    eraser = PrincipalEraser(audit=AuditLog("audit", retention_seconds=1, client=object()))

    with pytest.raises(RuntimeError, match="AGENT_ERASE_SALT_SECRET"):
        eraser.erase(ALICE)


def test_an_eraser_without_stores_reports_zeros():
    assert PrincipalEraser(settings=ErasureSettings()).erase(ALICE) == ErasureCounts()
