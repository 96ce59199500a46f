"""What analysts read: reconciliation, denials, the claim lifecycle and the report."""
