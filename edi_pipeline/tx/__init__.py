"""The transaction sets (837P, 835, 999, 277CA): typed records and their parsers."""
