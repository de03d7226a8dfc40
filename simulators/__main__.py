"""`python -m simulators`: the simulators' command line."""

import sys

from simulators.cli import cli_main

sys.exit(cli_main())
