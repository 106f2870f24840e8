"""Event-driven async tasks: records, store, submission, workers, long-task workflow steps and notifications."""

from agentrail_runtime.tasks.events import TaskEvents
from agentrail_runtime.tasks.models import FINISHED, TaskError, TaskMessage, TaskRecord, TaskResult, TaskStatus
from agentrail_runtime.tasks.service import TaskService, TaskSubmission, UnknownTaskType
from agentrail_runtime.tasks.store import TaskFinished, TaskNotFound, TaskStore
from agentrail_runtime.tasks.workflow import LongTaskSteps

__all__ = [
    "FINISHED",
    "LongTaskSteps",
    "TaskError",
    "TaskEvents",
    "TaskFinished",
    "TaskMessage",
    "TaskNotFound",
    "TaskRecord",
    "TaskResult",
    "TaskService",
    "TaskStatus",
    "TaskStore",
    "TaskSubmission",
    "UnknownTaskType",
]
