"""Stages composed over a file: ingest into the store, resubmission."""
