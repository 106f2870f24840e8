"""Shadow deployment: a sample of live requests replayed on the candidate version, dry-run, for offline comparison."""

from agentrail_runtime.shadow.candidate import SHADOW_EVENT_KEY, ShadowCandidate, is_shadow_event
from agentrail_runtime.shadow.comparisons import Comparison, ComparisonStore
from agentrail_runtime.shadow.models import RunSummary, ShadowRequest
from agentrail_runtime.shadow.report import ShadowReport, shadow_report
from agentrail_runtime.shadow.sampler import ShadowSampler, ShadowSettings, sampled
from agentrail_runtime.shadow.worker import ShadowWorker, ShadowWorkerSettings

__all__ = [
    "SHADOW_EVENT_KEY",
    "Comparison",
    "ComparisonStore",
    "RunSummary",
    "ShadowCandidate",
    "ShadowReport",
    "ShadowRequest",
    "ShadowSampler",
    "ShadowSettings",
    "ShadowWorker",
    "ShadowWorkerSettings",
    "is_shadow_event",
    "sampled",
    "shadow_report",
]
