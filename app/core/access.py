"""What a route declares about who may call it, read from the route table.

The access levels and the walk over a route's dependencies know nothing of accounts: the policies that enforce
them (app/routes/policy.py) build on this, and the error handlers and the API description read it without them.
"""

from __future__ import annotations

from enum import StrEnum

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts


class Access(StrEnum):
    public = "public"  # anyone, signed in or not
    account = "account"  # signed in, address not necessarily verified yet
    worker = "worker"  # signed in with a verified address of the organization
    organizer = "organizer"  # an organizer of the petition named in the path
    responder = "responder"
    pulse = "pulse"  # a responder or an admin: they put questions to the whole organization (issue #25)
    moderator = "moderator"
    admin = "admin"
    development = "development"  # only exists outside production


def declared_access(route: APIRoute) -> set[Access]:
    """The access levels a route declares, found by walking its dependency tree."""
    found: set[Access] = set()

    def walk(dependant: Dependant) -> None:
        access = getattr(dependant.call, "access", None)
        if isinstance(access, Access):
            found.add(access)
        for sub in dependant.dependencies:
            walk(sub)

    walk(route.dependant)
    return found


def route_table(app: FastAPI) -> tuple[dict[tuple[str, str], APIRoute], set[str]]:
    """Every (method, path) the app serves with its route, and the paths of routes that are not ours."""
    handlers: dict[tuple[str, str], APIRoute] = {}
    others: set[str] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in context.methods or ():
                handlers[(method, str(context.path))] = route
        else:
            others.add(str(context.path))
    return handlers, others
