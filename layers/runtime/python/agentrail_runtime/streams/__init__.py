"""The WebSocket streaming API: its ``$connect`` authorizer (``authorizer``), its routes (``socket``), its frames
(``frames``) and the worker that takes a turn and streams it (``turns``). Each handler imports the module it serves."""

__all__: list[str] = []
