"""`python -m wnb` runs the command line."""

from wnb.cli import app

app(prog_name="wnb")
