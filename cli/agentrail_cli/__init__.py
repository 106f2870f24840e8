"""agentrail command line: local mode, the scripted tour, OpenAPI export and operations against a deployed stack."""

__all__: list[str] = []
