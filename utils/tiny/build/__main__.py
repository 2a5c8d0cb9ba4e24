"""``python -m utils.tiny.build``: rebuild the tiny model (see :mod:`utils.tiny.build`)."""

import sys

from .pipeline import main

main(sys.argv[1:])
