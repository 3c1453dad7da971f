"""`python -m podmigration.cli`, and the entry of the single-file build (`make cli-zipapp`), which is installed
under both plugin names: run as `kubectl_complete-migrate` it completes, else it is `kubectl migrate`."""

import os
import sys

from podmigration.cli import main
from podmigration.cli.complete import main as complete


def run() -> None:
    program = os.path.basename(sys.argv[0])
    sys.exit(complete() if program.startswith("kubectl_complete-") else main())


if __name__ == "__main__":
    run()
