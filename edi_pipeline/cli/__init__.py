"""The edi-pipeline command line."""
