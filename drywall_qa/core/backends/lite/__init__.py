"""drywall-qa-lite: a small promptable segmenter that runs offline on a CPU, in the pieces of
segmentation_models_pytorch.

- ``encoder.py``: EfficientNet-Lite0 (stem and MBConv blocks, ImageNet-initialised) → features at strides 2–32,
  computed once per image, of ``out_channels`` channels.
- ``prompt_encoder.py``: prompt → frozen all-MiniLM-L6-v2 sentence embedding → MLP → FiLM scale and shift for every
  decoder level.
- ``decoder.py``: FPN-style top-down path, FiLM-modulated at each scale down to stride 2. Its lateral projections are
  prompt-independent, so they run once per image inside ``encode_image``; decoding runs channels-last.
- ``model.py``: encoder, decoder, prompt MLP and a one-channel head as a transformers model; logits are upsampled to
  the model input size so 2–5 px cracks survive.
- ``config.py``: the hyper-parameters (defaults: the bundled model's) and the config.json checks.
- ``backend.py``: the model and the sentence encoder behind the backend contract.
"""

from drywall_qa.core.backends.lite.backend import LiteBackend
from drywall_qa.core.backends.lite.config import LiteConfig
from drywall_qa.core.backends.lite.model import LiteModel

__all__ = ["LiteBackend", "LiteConfig", "LiteModel"]
