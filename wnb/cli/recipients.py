"""`wnb recipients import` and `wnb recipients list`: the directory of organisations by ODS code (issue 18 part 1),
where a contact that names only the code is sent."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from wnb.cli.common import JsonOption, emit_json, err, guarded, open_database, out, print_counts
from wnb.core.errors import WnbError

recipients_app = typer.Typer(help="The recipient directory: organisations by ODS code.", no_args_is_help=True)


@recipients_app.command("import")
def recipients_import(
    file: Annotated[Path, typer.Argument(help="NDJSON, or CSV headed ods_code,name,email,endpoint.")],
) -> None:
    """Add or replace organisations of the directory by ODS code; a file with a bad row imports nothing."""
    from wnb.core.contacts import Recipient
    from wnb.core.limits import value_problem
    from wnb.ingest import read_file
    from wnb.store.db import writing
    from wnb.store.recipients import save_recipients

    def run() -> None:
        if not file.is_file():
            raise WnbError(f"{file}: no such file")
        taken: list[Recipient] = []
        problems: list[str] = []
        for item in read_file(file, "csv" if file.suffix.lower() == ".csv" else "ndjson"):
            try:
                if isinstance(item.data, WnbError):
                    raise item.data
                if found := value_problem(item.data):
                    raise found
                taken.append(Recipient.parse(item.data))
            except WnbError as error:
                problems.append(f"{file.name}, line {item.line}: {error}")
        if problems:
            for problem in problems:
                err.print(problem, markup=False, highlight=False, soft_wrap=True)
            raise WnbError(f"{file}: {len(problems)} bad row(s); nothing imported, fix them and import again")
        with writing(open_database()) as connection:
            counts = save_recipients(connection, taken, datetime.now(UTC), "cli")
        print_counts(str(file), Counter(counts), ["created", "updated"])

    guarded(run)


@recipients_app.command("list")
def recipients_list(as_json: JsonOption = False) -> None:
    """List the directory: ODS code, name, secure e-mail, endpoint."""
    from rich.table import Table

    from wnb.store.recipients import all_recipients

    def run() -> None:
        with open_database().connect() as connection:
            found = [recipient.model_dump() for recipient in all_recipients(connection)]
        if as_json:
            return emit_json(found)
        table = Table(title=f"{len(found)} recipient{'s' if len(found) != 1 else ''}")
        for column in ("ODS code", "name", "secure e-mail", "endpoint"):
            table.add_column(column)
        for entry in found:
            table.add_row(entry["ods_code"], entry["name"], entry["email"] or "", entry["endpoint"] or "")
        out.print(table)

    guarded(run)
