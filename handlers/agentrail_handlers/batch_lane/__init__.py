"""The batch lane function: collects ended Bedrock batch jobs and flushes waiting tasks into new ones, on a schedule."""
