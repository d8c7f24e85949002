import sys

from rm_demo.cli import main

sys.exit(main())
