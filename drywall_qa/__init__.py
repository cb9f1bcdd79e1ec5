"""drywall-qa: promptable segmentation for drywall quality assurance.

Layers: :mod:`drywall_qa.core` (segmenter, backends, views, post-processing, the result object); the feature packages
``data``, ``evaluation``, ``calibration``, ``jobs``, ``review``, ``training`` and ``serving`` on top; the ``drywall-qa``
command (:mod:`drywall_qa.cli`) and the web app (:mod:`drywall_qa.app`) over them.
"""

from drywall_qa import _command_aliases

__version__ = "0.5.0"

_command_aliases.install()
