"""The `wnb` command (wnb/cli/main.py assembles it): one module per kind of command, helpers in common.py."""
