"""Errors a user can cause. Each carries one readable line: the UI shows it with `st.error`,
the CLI prints it and exits non-zero; neither ever shows a traceback for these."""


class ResidueError(ValueError):
    """Something the user asked for cannot be done (bad data, bad config, unknown name...)."""


class Cancelled(Exception):
    """Raised between steps when the user pressed Stop; nothing half-done is cached."""
