"""``python -m keras_hrf.cli``: the ``keras-hrf`` command."""

import sys

from keras_hrf.cli import main

sys.exit(main())
