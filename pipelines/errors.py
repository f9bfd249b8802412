"""The base of every error a user can act on: jobs print it as one line, without a traceback."""


class UserError(ValueError):
    """Bad configuration or input; the message names the key, file, column or row and what was expected."""
