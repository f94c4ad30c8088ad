import sys

from unetpp.cli.main import main

sys.exit(main())
