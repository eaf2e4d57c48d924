"""``python -m golem_tasks.localnet up --providers 2``: see :mod:`.cli`."""

import sys

from .cli import main

sys.exit(main())
