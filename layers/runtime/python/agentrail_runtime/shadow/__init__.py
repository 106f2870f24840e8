"""Shadow deployment: a sample of live requests replayed on the candidate version, dry-run, for offline comparison.

The report (``agentrail_runtime.shadow.report``, the eval scorers and judge) is imported by name, not from here: a
live function that samples requests never loads the evals.
"""

from agentrail_runtime.shadow.candidate import SHADOW_EVENT_KEY, ShadowCandidate, is_shadow_event
from agentrail_runtime.shadow.comparisons import Comparison, ComparisonStore
from agentrail_runtime.shadow.models import RunSummary, ShadowRequest
from agentrail_runtime.shadow.sampler import ShadowSampler, ShadowSettings, sampled
from agentrail_runtime.shadow.worker import ShadowWorker, ShadowWorkerSettings

__all__ = [
    "SHADOW_EVENT_KEY",
    "Comparison",
    "ComparisonStore",
    "RunSummary",
    "ShadowCandidate",
    "ShadowRequest",
    "ShadowSampler",
    "ShadowSettings",
    "ShadowWorker",
    "ShadowWorkerSettings",
    "is_shadow_event",
    "sampled",
]
