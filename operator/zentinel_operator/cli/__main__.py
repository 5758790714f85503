"""``python -m zentinel_operator.cli``: the same program as ``zentinelctl`` and ``kubectl zentinel``."""

import sys

from . import main

sys.exit(main())
