"""The Inspect tab: a photo and its prompts → overlay, masks, legend and downloads."""
