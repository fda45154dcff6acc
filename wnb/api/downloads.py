"""A CSV file to download, as the API and the pages answer one: UTF-8, an attachment with its file name.

The text comes from wnb.core.csv_cells (formula-like cells kept as text) or a module built on it.
"""

from __future__ import annotations

from fastapi.responses import Response


def csv_download(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
