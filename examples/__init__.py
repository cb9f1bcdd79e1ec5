"""Generated demo images and the script that makes them."""
