"""Fine-tuning: samples and augmentation, losses, frozen-feature cache, checkpoints and the Accelerate loop."""
