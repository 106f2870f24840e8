"""Event-driven async tasks: records, store, submission, workers and notifications (long-task steps: ``workflows``)."""

from agentrail_runtime.tasks.events import TaskEventNotPublished, TaskEvents
from agentrail_runtime.tasks.models import FINISHED, TaskError, TaskMessage, TaskRecord, TaskResult, TaskStatus
from agentrail_runtime.tasks.service import TaskService, TaskSubmission, UnknownTaskType
from agentrail_runtime.tasks.store import TaskFinished, TaskNotFound, TaskStore

__all__ = [
    "FINISHED",
    "TaskError",
    "TaskEventNotPublished",
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
