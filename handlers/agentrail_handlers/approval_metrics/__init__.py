"""The approval-metrics function: emits the pending approvals' count and oldest age on a schedule."""
