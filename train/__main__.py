"""``python -m train``: the same as ``drywall-qa train`` (``accelerate launch -m train`` runs it on many devices)."""

import sys

from drywall_qa.cli.train import main

sys.exit(main())
