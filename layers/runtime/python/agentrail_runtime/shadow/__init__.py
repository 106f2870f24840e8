"""Shadow deployment: a sample of live requests replayed on the candidate version, dry-run, for offline comparison.

Only what a live function needs to sample requests is exported here. The rest is imported by its module path, so
each function loads its own part: the candidate (``agentrail_runtime.shadow.candidate``, which loads the agent
service), the worker and the comparison table (``.worker``, ``.comparisons``), and the report (``.report``, the
eval scorers and judge).
"""

from agentrail_runtime.shadow.models import SHADOW_EVENT_KEY, RunSummary, ShadowRequest, is_shadow_event
from agentrail_runtime.shadow.sampler import ShadowSampler, ShadowSettings, erasable_comparisons, sampled

__all__ = [
    "SHADOW_EVENT_KEY",
    "RunSummary",
    "ShadowRequest",
    "ShadowSampler",
    "ShadowSettings",
    "erasable_comparisons",
    "is_shadow_event",
    "sampled",
]
