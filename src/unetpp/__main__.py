import sys

from unetpp.cli.main import main

if __name__ == "__main__":  # worker processes (spawn) may import this module: they must not run the CLI
    sys.exit(main())
