"""IAM's ``POST /v3/auth/tokens`` (password method, project scope) as the simulator serves it."""

from __future__ import annotations

import json

from aiohttp import web

from simulator.gateway import Gateway
from simulator.responses import iam_error

GATEWAY_KEY = web.AppKey("gateway", Gateway)
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


async def issue_token(request: web.Request) -> web.Response:
    """Exchange user, password and domain for a token (``X-Subject-Token``) scoped to a project
    or, with ``"scope": {"domain": ...}``, to the account."""
    gateway = request.app[GATEWAY_KEY]
    try:
        auth = json.loads(await request.read())["auth"]
        identity = auth["identity"]
        if identity["methods"] != ["password"]:
            return iam_error(400, "Only the password method is supported here.")
        user = identity["password"]["user"]
        name, password, domain = user["name"], user["password"], user["domain"]["name"]
        scope = auth["scope"]
        # A domain scope (global services such as TMS) or a project scope (IMS).
        project = None if "domain" in scope else scope["project"]
        project_id = None if project is None else project.get("id") or gateway.config.project_id
    except (ValueError, KeyError, TypeError, AttributeError):
        return iam_error(400, "The request body is invalid.")
    issued = gateway.issue_token(user=name, password=password, domain=domain, project_id=project_id)
    if issued is None:
        return iam_error(401, "The username or password is wrong.")
    value, token = issued
    now = gateway.now()
    scoped = (
        {"domain": {"id": gateway.config.tms.domain_id, "name": domain}}
        if project is None
        else {"project": {"id": project_id, "name": project.get("name", project_id)}}
    )
    body = {
        "token": {
            "methods": ["password"],
            "issued_at": now.strftime(ISO_FORMAT),
            "expires_at": token.expires_at.strftime(ISO_FORMAT),
            **scoped,
            "user": {"name": name, "domain": {"name": domain}},
        }
    }
    return web.json_response(body, status=201, headers={"X-Subject-Token": value})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v3/auth/tokens", issue_token, name="iam_token")
