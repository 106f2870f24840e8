"""Lambda handlers: thin adapters from an AWS event to the agentrail runtime. Each folder is one function's code asset."""
