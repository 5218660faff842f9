"""The simulator's aiohttp application: gateway checks, faults and stats around IMS, TMS
and IAM.

Every IMS or TMS call passes, in order: latency, dropped connection, authentication (AK/SK or
token; TMS also wants X-Domain-Id), the API's own rate limit, injected faults, then the API.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from aiohttp import web
from aiohttp.typedefs import Handler

from simulator import iam, ims, query, tms
from simulator.config import SimulatorConfig
from simulator.gateway import AuthFailure, Gateway, SignedRequest
from simulator.limits import CallStats, RateLimit, Throttle
from simulator.responses import INJECTED, gateway_error, new_request_id, tms_error
from simulator.state import ImageStore


@dataclass
class Simulator:
    """One simulator's state: images, gateway, throttle, stats and fault dice."""

    config: SimulatorConfig
    store: ImageStore = field(default_factory=ImageStore)
    stats: CallStats = field(default_factory=CallStats)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        # Faults may be changed while serving (POST /_sim/faults), so they live here.
        self.fail_rates = dict(self.config.fail_rates)
        self.drop_rate = self.config.drop_rate
        skew = timedelta(seconds=self.config.gateway.clock_skew_s)
        self.gateway = Gateway(self.config, now=lambda: datetime.now(UTC) + skew)
        # Each API has its own allowance, as the real gateway counts per API.
        self.throttles = {
            "ims": Throttle(self.config.rate_limit),
            "tms": Throttle(self.config.tms.rate_limit),
        }
        self.tms = tms.TagService(
            self.store,
            resource_type=self.config.tms.resource_type,
            lists_ims=self.config.tms.lists_ims,
            max_resources=self.config.tms.max_resources,
        )
        if self.config.seed is not None:
            self.rng.seed(self.config.seed)

    def latency_s(self) -> float:
        jitter = self.rng.uniform(-1.0, 1.0) * self.config.latency_jitter_ms
        return max(0.0, self.config.latency_ms + jitter) / 1000.0

    def injected_status(self) -> int | None:
        draw = self.rng.random()
        for status, share in sorted(self.fail_rates.items()):
            if draw < share:
                return status
            draw -= share
        return None

    def stats_json(self) -> dict[str, object]:
        return {
            "calls_by_status": {str(k): v for k, v in sorted(self.stats.by_status.items())},
            "calls_by_operation": dict(self.stats.by_operation),
            "calls_by_api": {api: self.stats.by_api[api] for api in API_PREFIXES.values()},
            "dropped": self.stats.dropped,
            "peak_rate_per_s": self.stats.peak_per_s,
            "peak_accepted_rate_per_s": self.stats.peak_accepted_per_s,
            "images": len(self.store.images),
            "tags": sum(len(tags) for tags in self.store.images.values()),
            "deletions": sum(self.store.deletions.values()),
            "tokens_issued": len(self.gateway.tokens),
            "max_deletions_per_image": max(self.store.deletions.values(), default=0),
            "first_call_at": self.stats.first_call_s,
            "last_call_at": self.stats.last_call_s,
            "timeline": {str(k): v for k, v in sorted(self.stats.timeline.items())},
            "windows": self.throttles["ims"].windows_json(),
            "tms_windows": self.throttles["tms"].windows_json(),
            "tms_resources_deleted": self.tms.resources_deleted,
        }


SIM_KEY = web.AppKey("simulator", Simulator)
# Which API a path belongs to; TMS is the global endpoint's /v1.0/ (not IMS's /v1/).
API_PREFIXES = {"/v1/": "ims", "/v2/": "ims", "/v1.0/": "tms"}


def api_of(path: str) -> str | None:
    """``ims`` or ``tms`` for a path behind the gateway; None for IAM and ``/_sim/``."""
    return next((api for prefix, api in API_PREFIXES.items() if path.startswith(prefix)), None)


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Play the API gateway in front of the IMS and TMS routes."""
    api = api_of(request.path)
    if api is None:
        return await handler(request)
    sim = request.app[SIM_KEY]
    route = request.match_info.route.name or "unknown"
    await asyncio.sleep(sim.latency_s())
    body = await request.read()
    if sim.rng.random() < sim.drop_rate:
        sim.stats.record(None, route, api=api)
        assert request.transport is not None
        request.transport.abort()
        # Nothing can be sent now; aiohttp drops the response of a closed connection.
        return web.Response(status=500)
    request_id = new_request_id()
    refusal = _gate(sim, request, body, request_id, api)
    if refusal is not None:
        refused, throttled = refusal
        sim.stats.record(refused.status, route, api=api, throttled=throttled)
        return refused
    request[ims.BODY_KEY], request[ims.REQUEST_ID_KEY] = body, request_id
    response = await handler(request)
    sim.stats.record(response.status, route, api=api)
    return response


def _gate(
    sim: Simulator, request: web.Request, body: bytes, request_id: str, api: str
) -> tuple[web.Response, bool] | None:
    """The gateway's refusal for this call, if any, and whether it is a throttle: auth,
    throttle, or an injected fault."""
    signed = SignedRequest(
        method=request.method,
        path=request.raw_path.split("?", 1)[0],
        query=list(request.rel_url.query.items()),
        headers=request.headers,
        body=body,
    )
    identity = sim.gateway.authenticate(signed, needs_domain=api == "tms")
    if isinstance(identity, AuthFailure):
        return gateway_error(identity.status, identity.code, identity.message, request_id), False
    project_id = request.match_info.get("project_id")
    if sim.config.gateway.check_project and project_id is not None:
        known = sim.store.projects | {sim.config.project_id}
        wrong = sim.gateway.check_project(identity, project_id, known=known)
        if wrong is not None:
            return gateway_error(wrong.status, wrong.code, wrong.message, request_id), False
    if not sim.throttles[api].allow(_allowance_of(sim, request, identity.name)):
        return _throttled(sim, api, request_id), True
    status = sim.injected_status()
    if status is not None:
        code, message = INJECTED.get(status, ("APIGW.0601", "Internal server error."))
        return gateway_error(status, code, message, request_id), False
    return None


def _throttled(sim: Simulator, api: str, request_id: str) -> web.Response:
    """TMS's own 403 TMS.0006 (``--tms-throttle-status 403``), else the gateway's 429."""
    if api == "tms" and sim.config.tms.throttle_status == 403:
        return tms_error(403, tms.TMS_THROTTLED, tms.THROTTLED_MESSAGE, request_id)
    limit = sim.config.tms.rate_limit if api == "tms" else sim.config.rate_limit
    return gateway_error(429, "APIGW.0308", _throttled_message(sim, limit), request_id)


def _allowance_of(sim: Simulator, request: web.Request, identity: str) -> str:
    """Whose allowance a call draws on: its identity, or under ``--rate-limit-policy ip`` the
    address it came from (a client bound to 127.0.0.2 counts apart from one on 127.0.0.1)."""
    if sim.config.rate_limit_policy == "ip":
        return f"ip:{request.remote}"
    return identity


def _throttled_message(sim: Simulator, limit: RateLimit | None) -> str:
    """The real gateway's words, naming the scope and limit applied; or, "plain", the bare
    sentence."""
    plain = INJECTED[429][1]
    if sim.config.rate_limit_message == "plain" or limit is None:
        return plain
    scope = sim.config.rate_limit_policy
    return f"{plain[:-1]}: policy {scope} over ratelimit,{limit.policy_text}"


async def stats(request: web.Request) -> web.Response:
    """``GET /_sim/stats``: calls per status, peak rate, images."""
    return web.json_response(request.app[SIM_KEY].stats_json())


async def image_tags(request: web.Request) -> web.Response:
    """``GET /_sim/images/{project}/{image}``: an image's tags without auth, for tests."""
    tags = request.app[SIM_KEY].store.tags_of(
        request.match_info["project_id"], request.match_info["image_id"]
    )
    if tags is None:
        return web.json_response({"error": "no such image"}, status=404)
    return web.json_response({"tags": tags})


async def tokens(request: web.Request) -> web.Response:
    """``GET /_sim/tokens``: the tokens issued so far, so that tests can look for leaks."""
    return web.json_response({"tokens": list(request.app[SIM_KEY].gateway.tokens)})


async def set_faults(request: web.Request) -> web.Response:
    """``POST /_sim/faults`` ``{"fail_rates": {"503": 0.2}, "drop_rate": 0.05}``: for tests."""
    sim = request.app[SIM_KEY]
    body = await request.json()
    if "fail_rates" in body:
        sim.fail_rates = {int(status): float(share) for status, share in body["fail_rates"].items()}
    if "drop_rate" in body:
        sim.drop_rate = float(body["drop_rate"])
    return web.json_response({"fail_rates": sim.fail_rates, "drop_rate": sim.drop_rate})


async def dated(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer's ``Date`` from the gateway's clock, so that ``--clock-skew-s`` shows in it
    as it would on a gateway whose clock is off (aiohttp fills it only when absent)."""
    response.headers["Date"] = format_datetime(request.app[SIM_KEY].gateway.now(), usegmt=True)


def make_app(sim: Simulator) -> web.Application:
    """Build the aiohttp application around a ``Simulator``."""
    app = web.Application(middlewares=[gateway_middleware], client_max_size=4 * 1024 * 1024)
    app[SIM_KEY] = sim
    app.on_response_prepare.append(dated)
    app[ims.STORE_KEY] = sim.store
    app[ims.MAX_TAGS_KEY] = sim.config.max_tags_per_image or 0
    app[iam.GATEWAY_KEY] = sim.gateway
    app[tms.TMS_KEY] = sim.tms
    ims.add_routes(app)
    tms.add_routes(app)
    query.add_routes(app)
    iam.add_routes(app)
    app.router.add_get("/_sim/stats", stats)
    app.router.add_get("/_sim/images/{project_id}/{image_id}", image_tags)
    app.router.add_post("/_sim/faults", set_faults)
    app.router.add_get("/_sim/tokens", tokens)
    return app
