"""Conversions between X12 and JSON, NDJSON, XML and CSV."""
