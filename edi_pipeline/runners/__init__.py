"""Runners that drive the pipeline over folders of files: the local batch."""
