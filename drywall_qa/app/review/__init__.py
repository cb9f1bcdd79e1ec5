"""The Review tab: score a split, decide image by image, fix the ground truth, export the corrected split."""
