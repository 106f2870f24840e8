"""``python -m agentrail_cli`` is the ``agentrail`` command."""

import sys

from agentrail_cli.main import main

sys.exit(main())
