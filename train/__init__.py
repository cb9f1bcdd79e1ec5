"""Fine-tuning entry point: ``drywall-qa train --help``."""
