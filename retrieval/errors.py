"""The one error root. Every error a user can cause (a bad file, flag, request or config) derives from
`ShopassistError`, so each entry point catches it once and prints one line; anything else is a bug."""


class ShopassistError(Exception):
    """Input the product cannot act on; the message says what to do instead."""
