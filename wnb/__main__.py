"""`python -m wnb` runs the command line."""

from wnb.cli.main import app

app(prog_name="wnb")
