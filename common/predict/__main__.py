import sys

from common.predict.cli import main

sys.exit(main())
