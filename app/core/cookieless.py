"""The routes a browser calls without cookies, in a module of its own that imports nothing of the app.

The request middleware, the error handlers and the API description all ask `is_cookieless`; a leaf module lets each
of them import it at the top without an import cycle.
"""

import re

# Routes a browser calls without cookies (anonymous signing): they read none, so a forged request has no
# authority to borrow and needs no CSRF token; and they are not logged, not even route and time.
ANONYMOUS_SUBMIT_PATH = "/api/v1/anonymous/signatures"
# Anonymous comments, their edits and deletions: authorised by the wallet's discussion credential, never a session.
ANONYMOUS_COMMENTS_PATH = "/api/v1/anonymous/comments"
COOKIELESS_PATHS = frozenset({ANONYMOUS_SUBMIT_PATH})
COOKIELESS_PREFIXES = (ANONYMOUS_COMMENTS_PATH,)
# Ballots (issue #25): answers and the exchange of a signer credential for a ballot's credential, and the fetch of a
# signer credential's kept reply by another device of the wallet (its nullifier would date the request). Each
# matches a request's path and its route's template (the API description asks with the template).
_ID = r"(?:\d+|\{[a-z_]+\})"
COOKIELESS_PATTERNS = (
    re.compile(rf"^/api/v1/ballots/{_ID}/(?:answers|exchange)$"),
    re.compile(rf"^/api/v1/petitions/{_ID}/signer-replies/(?:[^/]+|\{{[a-z_]+\}})$"),
)


def is_cookieless(path: str) -> bool:
    # A trailing slash is redirected to the route, and that redirect must not be logged either.
    path = path.rstrip("/")
    return (
        path in COOKIELESS_PATHS
        or path.startswith(COOKIELESS_PREFIXES)
        or any(pattern.match(path) for pattern in COOKIELESS_PATTERNS)
    )
