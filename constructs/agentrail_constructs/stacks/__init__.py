"""Thin stacks, one per pattern: they compose constructs and carry tags and removal policies."""

from agentrail_constructs.stacks.asgi import AsgiAgentStack
from agentrail_constructs.stacks.async_agent import AsyncAgentStack
from agentrail_constructs.stacks.multiagent import HierarchicalStack, MultiAgentStack
from agentrail_constructs.stacks.pattern import PatternStack
from agentrail_constructs.stacks.pipeline import PipelineStack
from agentrail_constructs.stacks.stateful import StatefulAgentStack
from agentrail_constructs.stacks.stateless import StatelessAgentStack

#: Pattern name (``cdk deploy -c patterns=...``) to stack class.
PATTERN_STACKS = {
    "stateless": StatelessAgentStack,
    "stateful": StatefulAgentStack,
    "async": AsyncAgentStack,
    "multiagent": MultiAgentStack,
    "hierarchical": HierarchicalStack,
    "asgi": AsgiAgentStack,
}

__all__ = [
    "PATTERN_STACKS",
    "AsgiAgentStack",
    "AsyncAgentStack",
    "HierarchicalStack",
    "MultiAgentStack",
    "PatternStack",
    "PipelineStack",
    "StatefulAgentStack",
    "StatelessAgentStack",
]
