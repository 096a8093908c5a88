"""The routes a browser calls without cookies, and the routes logged by the hour, in a module of its own that
imports nothing of the app.

The request middleware, the error handlers and the API description all ask `is_cookieless` or
`logs_by_the_hour`; a leaf module lets each of them import it at the top without an import cycle.
"""

import re
from collections.abc import Mapping
from typing import Any

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


# Routes that touch anonymous features: the wallet collecting credentials, the published keys, anonymous
# signatures and comments, and the petition page and discussions where people act anonymously. They get no
# line each: they are counted per route and status, and the counts logged once the hour is over, dated by it
# (HourlyRequests). A line each, to the millisecond or in turn with a sign-in's line, named who collected a
# token or posted a comment. Matched against the route template (the raw path before routing: a 413).
# So are the anonymity figure and a petition's signature log: the wallet and the command-line client read them
# just before an anonymous action, so their lines would date it. So are the wallet's pages (linking a device).
# So is everything those pages load: a line to the millisecond for the sub-resource put the page's time back.
# The organization's stylesheet and logo (every page, once an admin sets them), the scripts and styles under
# /static (served with no Cache-Control, so a browser asks again on each page; matched on the raw path, as a
# mount has no route template), the share row's QR code and poster, and /favicon.ico, which browsers ask for
# unbidden (a 404). The unsubscribe page too: reached from mail about a petition, often on the way to its page.
HOURLY_LOG_PREFIXES = (
    "/api/v1/wallet",
    "/api/v1/anonymous",
    "/api/v1/petitions/{petition_id}/log",
    "/wallet",
    "/organization/",
    "/static/",
    "/unsubscribe/",
    # A poll's page, where a person answers anonymously, and what the wallet and the command-line client read of
    # the ballot just before answering (issue #25).
    "/polls/{ballot_id}",
    "/api/v1/ballots/{ballot_id}",
)
HOURLY_LOG_PARTS = ("/anonymous", "/comments", "/anonymity")
HOURLY_LOG_ROUTES = frozenset(
    {
        "/petitions/{petition_id}",
        "/api/v1/petitions/{petition_id}",
        "/petitions/{petition_id}/live",
        "/petitions/{petition_id}/qr.svg",
        "/petitions/{petition_id}/poster.pdf",
        "/favicon.ico",
    }
)


def logs_by_the_hour(route: str) -> bool:
    return (
        route in HOURLY_LOG_ROUTES
        or route.startswith(HOURLY_LOG_PREFIXES)
        or any(part in route for part in HOURLY_LOG_PARTS)
    )


def line_by_the_hour(scope: Mapping[str, Any]) -> bool:
    """Whether a log line about this request keeps only the hour: a cookie-less request's, or one to a route whose
    requests are logged by the hour, which a line to the millisecond would date all the same. The route's template
    once routed, else the raw path."""
    route = getattr(scope.get("route"), "path_format", None) or scope["path"]
    return is_cookieless(scope["path"]) or logs_by_the_hour(route)
