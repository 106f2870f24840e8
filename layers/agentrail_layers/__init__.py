"""What the layers are built from: ``dependencies/`` (the pins and hashed lock of the third-party packages) and
:mod:`~agentrail_layers.interpreters` (this machine's ``pythonX.Y`` for a Lambda runtime). Standard library only."""
