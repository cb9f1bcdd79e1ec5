"""``python -m drywall_qa.review``: the same as ``drywall-qa review``."""

import sys

from drywall_qa.cli.review import main

sys.exit(main())
