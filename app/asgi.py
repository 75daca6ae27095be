"""Wiring only: build the Litestar app from settings. Serve with ``leadkit serve``."""

from __future__ import annotations

import gc
import logging
import os
import signal

import httpx
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader, State
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from litestar_htmx import HTMXPlugin

from app.analytics.links import LinkFiguresQuery
from app.analytics.routes import ROUTES as ANALYTICS_ROUTES
from app.bookings.routes import ROUTES as BOOKING_ROUTES
from app.bookings.views import call_to_action
from app.brand.book import BrandBook
from app.brand.routes import ROUTES as BRAND_ROUTES
from app.brand.service import default_brand
from app.core.api import ApiOnlySchema, json_bodies_only, openapi_config, strict_json_bodies
from app.core.crypto import DataCipher
from app.core.handlers import EXCEPTION_HANDLERS
from app.core.lifeline import die_with_parent
from app.core.live import LiveHub
from app.core.ratelimit import RateLimiter, RedisRateLimiter, SQLRateLimiter
from app.core.redis import make_redis
from app.core.shutdown import Step, stop_in_turn
from app.core.state import part, put
from app.core.streams import StreamSlots, end_streams_on_shutdown
from app.core.templating import STATIC, make_environment
from app.core.web import web_middleware
from app.db.engine import (
    Storage,
    make_engine,
    make_sessionmaker,
    make_side_engine,
    prepare_side,
)
from app.db.uow import remember_status, request_session
from app.draws.redis_entries import redis_entries
from app.draws.service import Draws
from app.events.service import Tracker
from app.gate.routes import ROUTES as GATE_ROUTES
from app.gate.routes import dev_sms
from app.gate.service import Gate
from app.gate.store import RedisOtpStore, SQLOtpStore
from app.grabs.service import Grabs, make_grabs
from app.health.routes import ROUTES as HEALTH_ROUTES
from app.kinds import KINDS
from app.links.routes import ROUTES as LINK_ROUTES
from app.links.service import LinkCounter
from app.models import SIDE_TABLES
from app.outbox.routes import ROUTES as OUTBOX_ROUTES
from app.outbox.sender import Outbox, make_outbox
from app.outbox.sms import SMS, sms_handler
from app.privacy.routes import ROUTES as PRIVACY_ROUTES
from app.reports.service import ReportRenderer
from app.settings import Settings, load_settings
from app.site.routes import ROUTES as SITE_ROUTES
from app.sms.base import quiet_http_client_logs
from app.sms.providers import make_provider
from app.staff.auth import auth_middleware
from app.staff.passwords import PasswordChecks
from app.staff.routes import ROUTES as STAFF_ROUTES
from app.tools.kinds import Kinds
from app.visitors.web import visitor_cookie_hook
from app.vouchers.routes import ROUTES as VOUCHER_ROUTES
from app.web.deps import DEPENDENCIES
from app.workspace.routes import ROUTES as WORKSPACE_ROUTES

# The development SMS inbox does not exist in production.
GATE_ROUTES_PROD = [route for route in GATE_ROUTES if route is not dev_sms]


def create_served_app() -> Litestar:
    """The app as ``leadkit serve`` runs it: one per worker process, with the process-wide
    garbage-collector tuning that only a long-running server should have."""
    # A worker whose server process is gone (killed, out of memory) stops, gracefully, instead
    # of serving on unsupervised and holding the port.
    die_with_parent(os.getppid(), signal.SIGTERM)
    app = create_app()
    # Warm the PDF workers at boot, so the first visitor's report is fast.
    app.on_startup.append(part(app, ReportRenderer).start)
    # A stopping worker ends its live streams instead of waiting minutes for them.
    app.on_startup.append(end_streams_on_shutdown(part(app, StreamSlots)))
    app.on_startup.append(freeze_startup_objects)
    return app


async def freeze_startup_objects() -> None:
    # Everything built at start-up lives as long as the process: keep it out of the cyclic
    # collector's full passes, which otherwise scan it all and stall requests for tens of ms.
    gc.collect()
    gc.freeze()
    # Fewer, larger young-generation passes: a request makes thousands of short-lived objects
    # and the default threshold (700) runs the collector, and promotes garbage into the
    # older generations, many times per request (measured in bench/: p99 under event ingest).
    gc.set_threshold(50_000, 50, 100)


def _parts(*parts: tuple[type, object]) -> State:
    """The app state: each long-lived part under its type (app/core/state.py)."""
    state = State()
    for kind, value in parts:
        put(state, kind, value)
    return state


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs request URLs at INFO (Aliyun's carries AccessKeyId and Signature).
    quiet_http_client_logs()
    engine = make_engine(settings)
    side_engine = make_side_engine(settings)
    sessionmaker = make_sessionmaker(engine)
    redis = make_redis(settings)
    limiter = (
        RedisRateLimiter(redis, settings.redis_prefix)
        if redis is not None
        else SQLRateLimiter(side_engine)
    )
    otp_store = (
        RedisOtpStore(redis, settings.redis_prefix)
        if redis is not None
        else SQLOtpStore(side_engine)
    )
    http = httpx.AsyncClient(timeout=settings.sms_timeout_seconds)
    cipher = DataCipher(settings)
    sms = make_provider(settings, http)
    gate = Gate(settings, otp_store, limiter, sms, cipher)
    # Everything outgoing leaves through the outbox: one sender per worker (app/outbox/).
    outbox = make_outbox(settings)
    outbox.register(SMS, sms_handler(settings, sms, cipher))
    tracker = Tracker(engine, settings.events_flush_seconds)
    reports = ReportRenderer(settings.data_dir, workers=settings.report_workers)
    live = LiveHub(redis, settings.redis_prefix)  # the one live-update hub (app/core/live.py)
    grabs = make_grabs(settings, engine, sessionmaker, redis, limiter, live)
    entries = redis_entries(redis, settings.redis_prefix, engine)  # app/draws/redis_entries.py
    draws = Draws(settings, sessionmaker, limiter, tracker, live, entries=entries)
    env = make_environment()
    # The brand visitor pages and PDFs show: a plain value per process, kept current (app/brand).
    brands = BrandBook(
        default_brand(settings),
        on_change=[lambda brand, first: reports.rebrand(str(brand.version), clear=not first)],
    )
    env.globals["site_brand"] = brands.current
    env.globals["call_to_action"] = call_to_action

    async def prepare() -> None:
        await prepare_side(side_engine, engine, SIDE_TABLES)
        await brands.start(sessionmaker)

    async def stop_reports() -> None:
        reports.stop()

    async def shutdown() -> None:
        steps: list[Step] = [
            ("brand", brands.stop),
            ("outbox", outbox.stop),
            ("grabs", grabs.stop),
            ("draws", draws.stop),
            ("tracker", tracker.stop),
            ("reports", stop_reports),
            ("http client", http.aclose),
        ]
        if redis is not None:
            steps.append(("redis", redis.aclose))
        steps += [("database", engine.dispose), ("side database", side_engine.dispose)]
        await stop_in_turn(steps)

    app = Litestar(
        route_handlers=[
            *SITE_ROUTES,
            *HEALTH_ROUTES,
            *STAFF_ROUTES,
            *KINDS.routes(),
            *LINK_ROUTES,
            *PRIVACY_ROUTES,
            *BRAND_ROUTES,
            *BOOKING_ROUTES,
            *WORKSPACE_ROUTES,
            *ANALYTICS_ROUTES,
            *VOUCHER_ROUTES,
            *OUTBOX_ROUTES,
            *(GATE_ROUTES if not settings.is_prod else GATE_ROUTES_PROD),
            create_static_files_router(
                "/static",
                directories=[STATIC],
                cache_control=CacheControlHeader(max_age=31_536_000, public=True),
            ),
        ],
        plugins=[HTMXPlugin(), ApiOnlySchema()],
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(env)),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="lk_csrf",
            cookie_httponly=True,
            cookie_secure=settings.is_prod,
            cookie_samesite="lax",
            exclude=["^/api/", "^/healthz"],
        ),
        # JSON-only bodies first: a refused body costs no token look-up.
        middleware=[json_bodies_only, auth_middleware(settings, sessionmaker)],
        before_request=strict_json_bodies,  # /api/ bodies exactly as the schema documents them
        # The unit of work: one session per request, committed at the edge (app/db/uow.py).
        dependencies={**DEPENDENCIES, "db_session": Provide(request_session(sessionmaker))},
        after_request=remember_status,
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_body_bytes,
        state=_parts(
            (Settings, settings),
            (Storage, Storage(engine, side_engine, sessionmaker, redis)),
            (RateLimiter, limiter),
            # Staff password hashing: in threads, a few at a time (app/staff/passwords.py).
            (
                PasswordChecks,
                PasswordChecks(
                    settings.login_max_concurrent_checks, settings.login_max_queued_checks
                ),
            ),
            (Tracker, tracker),
            (ReportRenderer, reports),
            (Gate, gate),
            (DataCipher, cipher),
            (Grabs, grabs),
            (Draws, draws),
            (LiveHub, live),
            (Outbox, outbox),
            (Kinds, KINDS),
            (LinkCounter, LinkFiguresQuery()),  # the links page's clicks and leads
            (BrandBook, brands),
            (StreamSlots, StreamSlots(settings.streams_per_worker, settings.streams_per_ip)),
        ),
        on_startup=[prepare, tracker.start, grabs.start, draws.start, outbox.start],
        on_shutdown=[shutdown],
        before_send=[visitor_cookie_hook(settings)],
        openapi_config=openapi_config(),  # /schema, /schema/openapi.json: the /api/ contract
        debug=False,
    )
    # Route middleware does not run when no route matches, so locale and security headers wrap
    # the whole handler: 404 and 405 pages get them too.
    app.asgi_handler = web_middleware(settings)(app.asgi_handler)
    return app
