"""``python -m drywall_qa``: the ``drywall-qa`` command without installing its script."""

import sys

from drywall_qa.cli import main

sys.exit(main())
