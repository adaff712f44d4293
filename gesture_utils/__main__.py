import sys

from gesture_utils.cli import main

sys.exit(main())
