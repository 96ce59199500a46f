"""X12 syntax: delimiters, the segment reader, envelopes and the writer."""
