"""Baselines measured in the same run as agentrail: a hand-written Powertools handler and a one-function CDK app."""

__all__: list[str] = []
