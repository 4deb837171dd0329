import sys

from sparse_rnn.cli import main

sys.exit(main())
