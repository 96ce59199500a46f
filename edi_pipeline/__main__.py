"""`python -m edi_pipeline` runs the command line."""

from edi_pipeline.cli.commands import main

main()
