"""The `edi-pipeline` command line: the group with every command module registered on it, and main."""

from __future__ import annotations

import gc
import signal
import sys

from edi_pipeline.cli.base import EXIT_SIGTERM, Terminated, _on_sigterm, cli
from edi_pipeline.cli import analytics, batch, files, lifecycle, ncci, scrub  # noqa: F401  (each registers its commands)
from edi_pipeline.cli import export  # noqa: F401,E402  (registers the export command on the group)
import edi_pipeline.cli.spark  # noqa: F401,E402  (registers spark-batch on the group; pyspark loads only when it runs)


def main() -> None:
    # The records we build hold no reference cycles; collecting less often saves ~10% on big files.
    gc.set_threshold(100_000, 50, 100)
    signal.signal(signal.SIGTERM, _on_sigterm)  # only here: batch's worker processes keep the default
    try:
        cli(prog_name="edi-pipeline")
    except Terminated:  # outside a command (while parsing arguments): nothing to clean up
        sys.exit(EXIT_SIGTERM)


if __name__ == "__main__":
    main()
