"""``python -m lava_sc``: the ``lava-sc`` command."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still importing the command
    sys.exit(130)

sys.exit(main())
