"""`wnb context import` and `wnb ingest`: feeds in, with a progress bar and the counts of what was taken."""

from __future__ import annotations

from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from wnb.cli.common import count_lines, guarded, print_counts, progress, service
from wnb.core.errors import WnbError

context_app = typer.Typer(help="Safeguarding context of people (child register).", no_args_is_help=True)


@context_app.command("import")
def context_import(file: Annotated[Path, typer.Argument(help="NDJSON person context records.")]) -> None:
    """Import person context records (DOB, statuses, needs, contacts); a bad line goes to `wnb rejects`."""
    from wnb.ingest.ndjson import read as read_ndjson

    def run() -> None:
        if not file.is_file():
            raise WnbError(f"{file}: no such file")
        counts = service().import_context(read_ndjson(file), origin=f"context:{file.name}")
        print_counts(str(file), counts, ["created", "updated", "rejected"])

    guarded(run)


def ingest(
    files: Annotated[
        list[Path], typer.Argument(help="NDJSON or CSV canonical events, FHIR JSON, or HL7 v2 SIU messages.")
    ],
    format: Annotated[
        str | None, typer.Option("--format", help="ndjson, csv, fhir or hl7 (default: by content).")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules",
            help="A ruleset directory to judge by instead of the registry's active version (refused in production).",
        ),
    ] = None,
) -> None:
    """Store and evaluate every event of the files; print counts. Rejected rows go to `wnb rejects`."""
    from wnb.ingest.ahead import read_checked

    def run() -> None:
        wnb = service(rules)
        for file in files:
            # A large file's lines are checked in a second process while this one ingests (wnb/ingest/ahead.py).
            with closing(read_checked(file, format)) as items, progress() as bars:
                bar = bars.add_task(f"ingesting {file.name}", total=count_lines(file))
                counts = wnb.ingest(items, origin=file.name, progress=partial(bars.advance, bar))
            print_counts(str(file), counts, ["accepted", "superseded", "stale", "duplicate", "rejected"])

    guarded(run)
