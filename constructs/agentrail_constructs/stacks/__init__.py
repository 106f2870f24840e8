"""Thin stacks, one per pattern: they compose constructs and carry tags and removal policies."""

from agentrail_constructs.stacks.stateless import StatelessAgentStack

#: Pattern name (``cdk deploy -c patterns=...``) to stack class.
PATTERN_STACKS = {
    "stateless": StatelessAgentStack,
}

__all__ = ["PATTERN_STACKS", "StatelessAgentStack"]
