import sys

from shopstack_rehearse.cli import main

sys.exit(main())
