"""Fine-tuning entry point: ``python -m train --help``."""
