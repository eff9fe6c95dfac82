"""``python -m lava_sc``: the ``lava-sc`` command."""

import sys

from .cli import main

sys.exit(main())
