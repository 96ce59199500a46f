"""The scrubbing rules: the engine, the pain-management rules and the NCCI edits."""
