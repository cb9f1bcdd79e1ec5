"""drywall-qa: promptable segmentation for drywall quality assurance."""

__version__ = "0.1.0"
