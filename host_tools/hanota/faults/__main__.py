import sys

from hanota.faults.cli import main

sys.exit(main())
