"""The errors a person sees: each becomes one line on stderr and exit code 2."""


class PatchcoderError(Exception):
    """A problem with the user's input or environment, reported in one line (exit code 2)."""


class UsageError(PatchcoderError):
    """A command line that cannot be run as given."""
