"""The errors a person sees: each becomes one line on stderr and exit code 2."""


class PatchcoderError(Exception):
    """A problem with the user's input or environment, reported in one line (exit code 2)."""


class UsageError(PatchcoderError):
    """A command line that cannot be run as given."""


class Terminated(BaseException):
    """SIGTERM asked a run to stop (raised by the sharded runners' handler, mining/pool.py).

    A BaseException, as KeyboardInterrupt is for SIGINT, so that no `except Exception` swallows it; the
    CLI reports it in one line with exit code 143 (128 + SIGTERM)."""
