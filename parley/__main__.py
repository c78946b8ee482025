import sys

from parley.tools.cli import main

sys.exit(main())
