"""Step Functions workflows over tasks and approvals: long-task steps with checkpoints, and approval pauses."""

from agentrail_runtime.workflows.approval import ApprovalSteps
from agentrail_runtime.workflows.long_task import LongTaskSteps

__all__ = ["ApprovalSteps", "LongTaskSteps"]
