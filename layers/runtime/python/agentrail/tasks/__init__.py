"""Event-driven async tasks: records, store, submission, workers, long-task workflow steps and notifications."""

from agentrail.tasks.events import TaskEvents
from agentrail.tasks.models import FINISHED, TaskError, TaskMessage, TaskRecord, TaskResult, TaskStatus
from agentrail.tasks.service import TaskService, TaskSubmission, UnknownTaskType
from agentrail.tasks.store import TaskFinished, TaskNotFound, TaskStore
from agentrail.tasks.workflow import LongTaskSteps

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
