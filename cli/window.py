"""`yagu window ...` commands."""


def register(main):
    """Attach this module's commands to the `yagu` group."""
