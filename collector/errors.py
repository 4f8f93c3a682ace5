"""The collector's errors: one root, and the kinds each interface translates in one place (the CLI to an exit
code, the API to an HTTP status with ``{"error": code, "detail": text}``).

Raise the kind that says what went wrong; the message says what to fix. ``status`` is the HTTP answer a kind
maps to; a subclass may set a more precise one (an upload's ``410 Gone``).
"""


class CollectorError(Exception):
    """Something the collector refuses or cannot do; ``str(error)`` says what and why."""

    code = "error"
    status = 500

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer to this error carries (a resumable upload's offset, say)."""
        return {}


class InvalidError(CollectorError, ValueError):
    """Bad input: a field, a value or a combination the rules do not allow."""

    code = "invalid"
    status = 422


class BadRequestError(InvalidError):
    """A request that cannot be taken as asked (a file name that leaves its folder, a malformed header)."""

    code = "bad-request"
    status = 400


class NotFoundError(CollectorError):
    """What the input names does not exist (a ticket number, a contract, a device)."""

    code = "not-found"
    status = 404


class ConflictError(CollectorError):
    """Well-formed input that the current state does not allow (a ticket's status, a name already taken)."""

    code = "conflict"
    status = 409


class UnavailableError(CollectorError):
    """A part the request needs is off or cannot be reached (remote diagnostics without a key)."""

    code = "unavailable"
    status = 503


class TooLargeError(CollectorError):
    """More than is allowed at once: a body, a file, a share of the disk."""

    code = "too-large"
    status = 413


class TooManyError(CollectorError):
    """Too many requests of this kind in too short a time; try again later."""

    code = "too-many-requests"
    status = 429


class GoneError(CollectorError):
    """What the input names existed but is no more (a bundle past its retention)."""

    code = "gone"
    status = 410


class UnauthorizedError(CollectorError):
    """No credentials, or credentials that are not (or no longer) valid: log in, or send a token."""

    code = "unauthorized"
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="hezo"'}


class ForbiddenError(CollectorError):
    """The caller is known but its role does not allow the request (or a form post lacks its CSRF token)."""

    code = "forbidden"
    status = 403
