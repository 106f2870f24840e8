"""The canary's pre-traffic hook: runs the agent's smoke evals before CodeDeploy shifts traffic to a new version."""
