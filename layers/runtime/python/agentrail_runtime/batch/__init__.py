"""The batch lane: tasks answered by Bedrock batch inference jobs at about half the on-demand price."""
