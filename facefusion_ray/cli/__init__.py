"""The `facefusion-ray` command line."""
