"""The scrub stage: apply the rules' edits, rebuild claims, answer with 277CAs."""
