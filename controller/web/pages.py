"""The staff, leader, officer and admin pages (Vietnamese), rendered on the server.

Every page route takes a role dependency (``PageStaff``, ``PageOfficer``, ``PageAdmin``,
``PageUser``) just as the API routes do; the role-matrix test walks them all. A visitor
without a session is sent to the login form, a signed-in user without the role gets a
403 page. Changes go through the JSON API (from the pages' scripts, session cookie plus
CSRF header), so the rules live in one place; the only forms handled here are login,
logout and the admin's new-account form.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select

from broadcasts.templates import list_templates
from controller import localtime
from controller.api.auth import check_password, client_key
from controller.api.deps import (
    SESSION_COOKIE,
    CurrentUser,
    Day,
    DbId,
    RuntimeDep,
    home_commune,
    signed_in_user,
)
from controller.api.deps import SessionDep as DbSession
from controller.domain import PLAYABLE, AnnouncementStatus
from controller.models import CameraAlertRecord, StreamSource
from controller.security import Role
from controller.services import alerts as alert_service
from controller.services import announcements as announcement_service
from controller.services import approval as approval_service
from controller.services import calendar as calendar_service
from controller.services import content as content_service
from controller.services import emergency as emergency_service
from controller.services import fleet, playback, reports, stats, users
from controller.services import relay as relay_service
from controller.services import schedules as schedule_service
from controller.web import views, wording
from controller.web.csrf import CSRF_COOKIE, new_token, well_signed

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
env = Environment(loader=FileSystemLoader(HERE / "templates"),
                  autoescape=select_autoescape(default=True, default_for_string=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
env.filters.update(time=views.fmt_time, ago=views.ago)
env.globals.update(
    ROLE_LABELS=views.ROLE_LABELS, STATUS_LABELS=views.STATUS_LABELS,
    PRIORITY_LABELS=views.PRIORITY_LABELS, DELIVERY_LABELS=views.DELIVERY_LABELS,
    ALERT_STATE_LABELS=views.ALERT_STATE_LABELS, ALERT_KIND_LABELS=views.ALERT_KIND_LABELS,
    KIND_LABELS=views.KIND_LABELS, WEEKDAYS=views.WEEKDAYS)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
"""No inline script or style anywhere: an injected tag could not run even if escaping
were ever missed."""


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageForbidden(Exception):
    def __init__(self, user: CurrentUser, needed: tuple[Role, ...]) -> None:
        self.user, self.needed = user, needed


class PageRoute(APIRoute):
    """Turns the page dependencies' refusals into a redirect to the login form or an HTML
    403 page (the API keeps its JSON 401/403)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", 303)
            except PageForbidden as exc:
                needed = ", ".join(views.ROLE_LABELS[r.value] for r in exc.needed)
                return render(request, "error.html", exc.user, status=403,
                              title="Không có quyền truy cập",
                              message=f"Trang này dành cho: {needed}.")

        return page_handler


router = APIRouter(route_class=PageRoute, include_in_schema=False)


# ------------------------------------------------------------------------- access

def page_user(request: Request,
              user: Annotated[CurrentUser | None, Depends(signed_in_user)]) -> CurrentUser:
    """The request's user: the session cookie's (a browser), or a bearer token's (a
    program: no cross-site risk, and the user that limits the page's database session
    is always this one)."""
    if user is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return user


def page_require(*roles: Role) -> Callable[[CurrentUser], CurrentUser]:
    needed = (*roles, Role.admin)

    def check(user: Annotated[CurrentUser, Depends(page_user)]) -> CurrentUser:
        if user.role not in needed:
            raise PageForbidden(user, needed)
        return user

    return check


PageUser = Annotated[CurrentUser, Depends(page_require(Role.staff, Role.leader,
                                                       Role.officer))]
"""Any person signed in: the pages are for people (a system account gets the 403 page)."""
PageStaff = Annotated[CurrentUser, Depends(page_require(Role.staff, Role.leader))]
PageOfficer = Annotated[CurrentUser, Depends(page_require(Role.officer, Role.leader))]
PageLeader = Annotated[CurrentUser, Depends(page_require(Role.leader))]
PageAdmin = Annotated[CurrentUser, Depends(page_require())]

NAV = [("/dashboard", "Tổng quan", {Role.staff, Role.leader}),
       ("/compose", "Soạn tin", {Role.staff, Role.leader}),
       ("/emergency", "Khẩn cấp", {Role.leader}),
       ("/live", "Phát trực tiếp", {Role.staff, Role.leader}),
       ("/relay", "Tiếp sóng", {Role.staff, Role.leader}),
       ("/schedules", "Lịch phát", {Role.staff, Role.leader}),
       ("/nodes", "Cụm loa", {Role.staff, Role.leader}),
       ("/villages", "Thôn/khu & lịch", {Role.staff, Role.leader}),
       ("/log", "Nhật ký phát", {Role.staff, Role.leader}),
       ("/alerts", "Cảnh báo", {Role.officer, Role.leader}),
       ("/admin/users", "Tài khoản", set()),
       ("/admin/audit", "Nhật ký thao tác", set())]


def nav_for(user: CurrentUser | None) -> list[tuple[str, str]]:
    if user is None:
        return []
    return [(href, label) for href, label, roles in NAV
            if user.role == Role.admin or user.role in roles]


def home_for(user: CurrentUser) -> str:
    return "/alerts" if user.role == Role.officer else "/dashboard"


def csrf_for(request: Request) -> tuple[str, bool]:
    """The visitor's CSRF token, and whether it is new (then the cookie must be set)."""
    runtime = request.app.state.runtime
    token = request.cookies.get(CSRF_COOKIE)
    if token and well_signed(runtime.secret_key, token):
        return token, False
    return new_token(runtime.secret_key), True


def secure(request: Request) -> bool:
    """Mark cookies Secure when served over https (directly or behind a proxy that
    uvicorn trusts with ``--proxy-headers``)."""
    return request.url.scheme == "https"


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax",
                        secure=secure(request), path="/")


def waiting_count(request: Request, user: CurrentUser | None) -> int:
    """Items waiting for approval: the badge on a leader's (or admin's) menu."""
    if user is None or user.role not in (Role.leader, Role.admin):
        return 0
    with request.app.state.runtime.db.session(commune=user.commune if user else None) as s:
        return approval_service.pending_count(s)


def render(request: Request, name: str, user: CurrentUser | None, *, status: int = 200,
           **context: Any) -> HTMLResponse:
    token, fresh = csrf_for(request)
    html = env.get_template(name).render(
        request=request, user=user, nav=nav_for(user), csrf_token=token,
        path=request.url.path, approvals_waiting=waiting_count(request, user),
        offline_min=request.app.state.runtime.settings.offline_alert_min, **context)
    response = HTMLResponse(html, status_code=status, headers={
        "Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store"})
    if fresh:
        set_csrf_cookie(response, request, token)
    return response


def safe_next(value: str | None) -> str | None:
    """Only a path on this site (no open redirect to ``//evil`` or ``https://…``)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return None


# ------------------------------------------------------------------------- login

@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> HTMLResponse:
    """Public: the sign-in form."""
    return render(request, "login.html", None, next=safe_next(next) or "", error="",
                  username="")


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, runtime: RuntimeDep, session: DbSession,
          username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=256)],
          next: Annotated[str, Form(max_length=500)] = "") -> Response:
    """Public (CSRF-checked): the same rate limit and token as ``POST /api/auth/token``; the
    token goes into an HttpOnly, SameSite=Lax cookie (Secure over https)."""
    try:
        account = check_password(runtime, client_key(request, username), session, username,
                                 password)
    except HTTPException as exc:  # too many attempts
        response = render(request, "login.html", None, status=429, next=safe_next(next) or "",
                          username=username, error=exc.detail["message"])
        response.headers.update(exc.headers or {})
        return response
    if account is None:
        return render(request, "login.html", None, status=401, next=safe_next(next) or "",
                      username=username, error="Sai tên đăng nhập hoặc mật khẩu.")
    ttl = timedelta(hours=runtime.settings.token_ttl_h)
    token = users.sign_in(session, account, runtime.secret_key, ttl)
    user = CurrentUser(account.username, Role(account.role), account.full_name)
    response = RedirectResponse(safe_next(next) or home_for(user), 303)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(ttl.total_seconds()),
                        httponly=True, samesite="lax", secure=secure(request), path="/")
    # a new CSRF token with the new session: one planted before login is worthless
    set_csrf_cookie(response, request, new_token(runtime.secret_key))
    return response


@router.post("/logout")
def logout(request: Request, runtime: RuntimeDep,
           user: Annotated[CurrentUser | None, Depends(signed_in_user)]) -> RedirectResponse:
    """Anyone (CSRF-checked, so another site cannot sign you out): ends the session on
    the server (a copy of the cookie is refused from now on) and drops the cookie. No
    session, or one that already ended: just the cookie."""
    if user is not None and user.session_jti:
        with runtime.db.session() as s:
            users.end_session(s, user.session_jti, user.username)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=secure(request))
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, user: PageUser) -> HTMLResponse:
    """Anyone signed in: the form to change one's own password."""
    return render(request, "account.html", user, error="", done=False)


@router.post("/account", response_class=HTMLResponse)
def change_password(request: Request, user: PageUser, runtime: RuntimeDep, session: DbSession,
                    current_password: Annotated[str, Form(max_length=256)],
                    new_password: Annotated[str, Form(max_length=256)]) -> Response:
    """A plain form (CSRF field): the same check and effect as ``POST /api/auth/password``
    (every session of the account ends; this browser gets a new one)."""
    if len(new_password) < 10:
        return render(request, "account.html", user, status=422, done=False,
                      error="Mật khẩu mới cần ít nhất 10 ký tự.")
    try:
        account = check_password(runtime, client_key(request, user.username), session,
                                 user.username, current_password)
    except HTTPException as exc:  # too many attempts
        return render(request, "account.html", user, status=429, done=False,
                      error=exc.detail["message"])
    if account is None:
        return render(request, "account.html", user, status=403, done=False,
                      error="Mật khẩu hiện tại không đúng.")
    users.change_password(session, account, new_password)
    ttl = timedelta(hours=runtime.settings.token_ttl_h)
    token = users.sign_in(session, account, runtime.secret_key, ttl)
    response = render(request, "account.html", user, error="", done=True)
    response.set_cookie(SESSION_COOKIE, token, max_age=int(ttl.total_seconds()),
                        httponly=True, samesite="lax", secure=secure(request), path="/")
    return response


@router.get("/")
def home(user: PageUser) -> RedirectResponse:
    return RedirectResponse(home_for(user), 303)


# ------------------------------------------------------------------------- staff pages

@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, user: PageStaff, session: DbSession) -> HTMLResponse:
    """Nodes online/offline (list and village map), what plays now, today's programme."""
    nodes = fleet.list_nodes(session)
    start, end = localtime.day_bounds(localtime.today())
    playing = [(n, (n.telemetry or {}).get("now_playing")) for n in nodes
               if n.online and (n.telemetry or {}).get("now_playing")]
    new_alerts = len(alert_service.list_alerts(session, state="new", limit=1000))
    titles = reports.item_titles(session)
    playing_of = {n.node_id: views.describe_playing(what, titles) for n, what in playing}
    mine = [a for a in announcement_service.list_announcements(session)
            if a.created_by == user.username]
    notes = approval_service.returned_notes(session, mine)
    minutes = request.app.state.runtime.settings.offline_alert_min
    gone = stats.long_offline(nodes, minutes)
    return render(request, "dashboard.html", user, nodes=nodes, playing_of=playing_of,
                  returned=[(a, notes[a.id]) for a in mine if a.id in notes],
                  online=sum(1 for n in nodes if n.online), map=views.village_map(nodes),
                  playing=playing, programme=views.programme(session, start, end),
                  today=localtime.today(), new_alerts=new_alerts,
                  charts=cached_glance(request, session), long_offline_ids=set(gone),
                  long_offline=[(n.name or "Cụm loa chưa đặt tên",
                                 views.ago(n.last_seen).replace(" trước", ""))
                                for n in nodes if n.node_id in gone],
                  failing_stations=relay_service.failing_sources(session))


GLANCE_TTL_S = 60.0
"""The 30-day charts are recomputed at most this often per controller process (the
dashboard reloads itself every 20 s on every open screen)."""


def cached_glance(request: Request, session: DbSession) -> dict[str, Any]:
    state = request.app.state
    cached = getattr(state, "glance", None)
    now, today = time.monotonic(), localtime.today()
    if cached is None or now - cached[0] > GLANCE_TTL_S or cached[1] != today:
        cached = state.glance = (now, today, glance_charts(session))
    return cached[2]


def glance_charts(session: DbSession) -> dict[str, Any]:
    """The dashboard's four charts over the last 30 local days."""
    from controller.web import charts

    days = stats.days_ending(localtime.today())
    airing = stats.airing_per_day(session, days)
    start, end = localtime.day_bounds(days[0])[0], localtime.day_bounds(days[-1])[1]
    samples = stats.online_over_time(session, start)
    per_kind = {views.ALERT_KIND_LABELS.get(k, "Loại khác"): [float(v) for v in counts]
                for k, counts in stats.alerts_per_day(session, days).items()}
    return {
        "plays": charts.bar_chart("Lượt phát mỗi ngày", "lượt", days,
                                  {"Lượt phát": [float(a.plays) for a in airing]}),
        "minutes": charts.bar_chart("Số phút phát mỗi ngày", "phút", days,
                                    {"Phút": [a.minutes for a in airing]}),
        "online": charts.line_chart("Cụm loa trực tuyến theo thời gian", "cụm",
                                    [(x.at, x.online, x.total) for x in samples],
                                    start, min(end, datetime.now(UTC))),
        "alerts": charts.bar_chart("Cảnh báo camera mỗi ngày theo loại", "cảnh báo", days,
                                   per_kind),
    }


@router.get("/emergency", response_class=HTMLResponse)
def emergency_page(request: Request, user: PageLeader, session: DbSession) -> HTMLResponse:
    """Send an emergency (new text or an approved recording) to everyone or some zones,
    after a confirmation step; see what plays now, by title, and stop it."""
    nodes = fleet.list_nodes(session)
    titles = reports.item_titles(session)
    active = [(s, s.announcement.title or s.announcement.text[:60])
              for s in emergency_service.active_emergencies(session)]
    playing = [(n, views.describe_playing((n.telemetry or {}).get("now_playing"), titles))
               for n in nodes if n.online and (n.telemetry or {}).get("now_playing")]
    ready = [a for a in announcement_service.list_announcements(session, limit=100)
             if a.status in PLAYABLE and a.media_sha256]
    return render(request, "emergency.html", user, nodes=nodes, active=active,
                  playing=playing, ready=ready, zones=views.zone_choices(session, nodes),
                  people=views.people_names(session),
                  online=sum(1 for n in nodes if n.online))


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request, user: PageStaff, session: DbSession) -> HTMLResponse:
    """Speak live from the browser's microphone to some or all speakers."""
    nodes = fleet.list_nodes(session)
    return render(request, "live.html", user, nodes=nodes,
                  zones=views.zone_choices(session, nodes),
                  online=sum(1 for n in nodes if n.online))


SLOT_LOG_SHOWN = 5
"""The latest tries of each slot shown on the relay page (the API has them all)."""


@router.get("/relay", response_class=HTMLResponse)
def relay_page(request: Request, user: PageStaff, session: DbSession) -> HTMLResponse:
    """Relays (tiếp sóng): stations (admins register them), slots scheduled like
    announcements (a leader approves), what each slot aired, a leader's relay at once."""
    nodes = fleet.list_nodes(session)
    slots = relay_service.list_slots(session)
    return render(request, "relay.html", user, nodes=nodes,
                  zones=views.zone_choices(session, nodes),
                  sources=relay_service.list_sources(session),
                  source_state=relay_service.source_state,
                  station_names={s.id: s.name for s in session.scalars(select(StreamSource))},
                  slots=slots, people=views.people_names(session),
                  logs={s.id: relay_service.slot_log(session, s.id)[-SLOT_LOG_SHOWN:]
                        for s in slots},
                  describe_rule=views.describe_rule, describe_targets=views.target_namer(session),
                  next_of=views.next_occurrence, end_note=wording.relay_end_note,
                  today=localtime.today(), is_admin=user.role == Role.admin,
                  can_approve=user.role in (Role.leader, Role.admin))


@router.get("/compose", response_class=HTMLResponse)
def compose(request: Request, user: PageStaff, session: DbSession) -> HTMLResponse:
    """Write (or fill a template), add a recording, listen to the preview, save, schedule
    and send for approval."""
    nodes = fleet.list_nodes(session)
    templates = list_templates()
    templates_json = [{"id": t.id, "title": t.title, "body": t.body,
                       "fields": [{"name": f.name, "label": f.label, "example": f.example}
                                  for f in t.fields]} for t in templates]
    return render(request, "compose.html", user, templates=templates,
                  templates_json=templates_json, nodes=nodes,
                  zones=views.zone_choices(session, nodes),
                  today=localtime.today())


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(request: Request, user: PageStaff, session: DbSession,
                   runtime: RuntimeDep, week: Day | None = None) -> HTMLResponse:
    """The list, the week view, a recurring schedule form, and approvals (with the words
    as they will be read, so a leader hears no surprise)."""
    monday, days = views.week_view(session, week or localtime.today())
    nodes = fleet.list_nodes(session)
    announcements = announcement_service.list_announcements(session, limit=100)
    returned = approval_service.returned_notes(session, announcements)
    commune = home_commune(user, runtime)
    readings = {a.id: content_service.reading(session, commune, a.text)
                for a in announcements if a.status == AnnouncementStatus.submitted}
    return render(request, "schedules.html", user, returned=returned, readings=readings,
                  people=views.people_names(session),
                  schedules=schedule_service.list_schedules(session), monday=monday,
                  days=days, prev_week=monday - timedelta(days=7),
                  next_week=monday + timedelta(days=7), announcements=announcements,
                  pending=[a for a in announcements if a.status == "submitted"],
                  nodes=nodes, zones=views.zone_choices(session, nodes),
                  describe_rule=views.describe_rule,
                  describe_targets=views.target_namer(session),
                  next_of=views.next_occurrence,
                  today=localtime.today(), can_approve=user.role in (Role.leader,
                                                                       Role.admin))


@router.get("/nodes", response_class=HTMLResponse)
def nodes_page(request: Request, user: PageStaff, session: DbSession) -> HTMLResponse:
    """Status, last seen, volume, clock, plan delivery; the remote operations this user
    may run (controller/services/operations.py), each node's reply shown in place."""
    from controller.services.operations import ALLOWED_ROLES

    allowed = {kind.value for kind, roles in ALLOWED_ROLES.items() if user.role in roles}
    nodes = fleet.list_nodes(session)
    titles = reports.item_titles(session)
    playing_of = {n.node_id: views.describe_playing((n.telemetry or {}).get("now_playing"),
                                                    titles) for n in nodes}
    return render(request, "nodes.html", user, nodes=nodes, allowed_ops=allowed,
                  playing_of=playing_of, zone_names=alert_service.labels(session).zones)


@router.get("/villages", response_class=HTMLResponse)
def villages_page(request: Request, user: PageStaff, session: DbSession,
                  runtime: RuntimeDep) -> HTMLResponse:
    """Villages (names, quiet hours), groups of nodes, holidays, and how words are read."""
    nodes = fleet.list_nodes(session)
    node_names = {n.node_id: n.name or calendar_service.zone_label(n.node_id) for n in nodes}
    return render(request, "villages.html", user,
                  zones=calendar_service.list_zones(session), node_names=node_names,
                  zone_label=calendar_service.zone_label,
                  groups=calendar_service.list_groups(session),
                  holidays=calendar_service.list_holidays(session), nodes=nodes,
                  lexicon=content_service.lexicon_entries(session,
                                                          home_commune(user, runtime)),
                  today=localtime.today())


@router.get("/log", response_class=HTMLResponse)
def log_page(request: Request, user: PageStaff, session: DbSession,
             day: Day | None = None) -> HTMLResponse:
    """The day's playback reports and totals; the CSV report to download."""
    day = day or localtime.today()
    start, end = localtime.day_bounds(day)
    entries = playback.log_entries(session, since=start, until=end, limit=2000)
    titles = reports.item_titles(session)
    names = {n.node_id: n.name or n.node_id for n in fleet.list_nodes(session)}
    rows = [(e, wording.item_label(e.item_id, titles),
             names.get(e.node_id, "Cụm loa chưa đăng ký")) for e in entries]
    return render(request, "log.html", user, day=day, rows=rows, note=wording.playback_note,
                  report=reports.daily_report(session, day),
                  prev_day=day - timedelta(days=1), next_day=day + timedelta(days=1))


@router.get("/audio/announcements/{announcement_id}", response_class=FileResponse)
def announcement_audio(announcement_id: DbId, user: PageStaff, session: DbSession,
                       runtime: RuntimeDep) -> FileResponse:
    """The rendered audio, so a leader listens to exactly what will play before approving."""
    a = announcement_service.get_announcement(session, announcement_id)
    if a is None or a.media_sha256 is None or a.media_codec is None:
        raise HTTPException(404, "no audio for this announcement")
    media_type = "audio/mpeg" if a.media_codec == "mp3" else f"audio/{a.media_codec}"
    return FileResponse(runtime.media.path(a.media_sha256, a.media_codec),
                        media_type=media_type)


# ------------------------------------------------------------------------- alert desk

@router.get("/alerts", response_class=HTMLResponse)
def alert_desk(request: Request, user: PageOfficer, session: DbSession,
               zone: str = "", camera: str = "", kind: str = "", state: str = "",
               day: str = "") -> HTMLResponse:
    """Alerts with filters; new ones arrive live (Server-Sent Events); works on a phone.
    Empty or mistyped filter fields mean any (a notice, never a 422 page). Cameras are
    offered by name and node, since their ids repeat from node to node."""
    from controller.web.filters import lenient_day

    the_day, notice = lenient_day(day)
    clean = {"zone": zone or None, "camera": camera or None, "kind": kind or None,
             "state": state if state in alert_service.STATES else None}
    # a camera is "node/camera": camera ids repeat from node to node ("cong-chinh")
    node, _, camera_id = (camera or "").rpartition("/")
    rows = alert_service.list_alerts(session, day=the_day, limit=200, **{
        **clean, "camera": camera_id or None, "node": node or None})
    names = alert_service.labels(session)
    cameras = sorted({(names.camera(node, cam), f"{node}/{cam}") for node, cam in session.execute(
        select(CameraAlertRecord.node_id, CameraAlertRecord.camera).distinct())})
    kinds = sorted(set(session.scalars(select(CameraAlertRecord.kind).distinct()))
                   | set(views.ALERT_KIND_LABELS))
    zones = sorted({z for _, zs in names.nodes.values() for z in zs})
    return render(request, "alerts.html", user,
                  alerts=[alert_service.event_of(r, names) for r in rows],
                  filters={**{k: v or "" for k, v in clean.items()},
                           "day": the_day.isoformat() if the_day else ""},
                  cameras=[(value, f"{label} · {names.node(value.partition('/')[0])[0]}")
                           for label, value in cameras],
                  kinds=kinds, zones=[(z, names.zones.get(z, z)) for z in zones],
                  states=alert_service.STATES, fmt_iso=views.fmt_iso, notice=notice)


# ------------------------------------------------------------------------- admin

NEW_USER_REFUSALS = {
    "username": "Tên đăng nhập: 3–64 ký tự, chữ thường không dấu, số, dấu chấm, gạch.",
    "password": "Mật khẩu cần ít nhất 10 ký tự.",
    "role": "Hãy chọn vai trò cho tài khoản.",
    "full_name": "Họ tên dài quá 200 ký tự.",
}
"""The new-account form's refusals, per field, in words an admin reads (never pydantic's)."""


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, user: PageAdmin, session: DbSession,
               created: str = "") -> HTMLResponse:
    """The accounts; ``created`` names the account the form just made (after its
    redirect), shown only when that account exists."""
    accounts = users.list_users(session)
    known = {a.username for a in accounts}
    return render(request, "users.html", user, users=accounts, error="",
                  created=created if created in known else "")


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(request: Request, user: PageAdmin, runtime: RuntimeDep,
                username: Annotated[str, Form(max_length=64)],
                password: Annotated[str, Form(max_length=256)],
                role: Annotated[str, Form(max_length=16)] = "",
                full_name: Annotated[str, Form(max_length=200)] = "") -> Response:
    """A plain form (CSRF field), validated by the API's own ``UserIn`` rules. The role
    has no default (a picker left alone must not make an admin): none chosen is refused."""
    from pydantic import ValidationError

    from controller.schemas import UserIn

    error, created = "", ""
    try:
        body = UserIn(username=username, password=password, role=role,  # type: ignore[arg-type]
                      full_name=full_name)
    except ValidationError as exc:
        field_name = str(exc.errors()[0]["loc"][0])
        error = NEW_USER_REFUSALS.get(field_name, "Thông tin tài khoản chưa hợp lệ.")
    else:
        with runtime.db.session() as s:
            try:
                account = users.create_user(s, body.username, body.password, Role(body.role),
                                            body.full_name, actor=user.username)
            except users.UserError:
                error = f"Tài khoản {body.username} đã có."
            else:
                created = account.username
    if created:  # Post/Redirect/Get: reloading the page does not send the form again
        return RedirectResponse(f"/admin/users?{urlencode({'created': created})}", 303)
    with runtime.db.session() as s:
        accounts = users.list_users(s)
    return render(request, "users.html", user, status=422, users=accounts, error=error,
                  created="")



AUDIT_PAGE = 50
"""Records per page of the audit log."""


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: PageAdmin, session: DbSession, who: str = "",
               action: str = "", page: str = "", from_: Annotated[str, Query(alias="from")] = "",
               to: str = "") -> HTMLResponse:
    """Who did what, when, to what: by person, action and a range of local days; newest
    first, a page at a time. Empty or mistyped fields mean any (no 422 page)."""
    from controller.services import audit
    from controller.web import audit_view
    from controller.web.filters import lenient_day, lenient_page

    first, note_from = lenient_day(from_)
    last, note_to = lenient_day(to)
    since = localtime.day_bounds(first)[0] if first else None
    until = localtime.day_bounds(last)[1] if last else None
    _, total = audit.search(session, actor=who or None, action=action or None, since=since,
                            until=until, limit=0)
    pages = max(1, -(-total // AUDIT_PAGE))
    number = lenient_page(page, pages)
    rows, _ = audit.search(session, actor=who or None, action=action or None, since=since,
                           until=until, offset=(number - 1) * AUDIT_PAGE, limit=AUDIT_PAGE)
    filters = {"who": who, "action": action, "from": first.isoformat() if first else "",
               "to": last.isoformat() if last else ""}

    def page_url(n: int) -> str:
        return "/admin/audit?" + urlencode({**filters, "page": n})

    people = [(u.username, u.full_name or u.username) for u in users.list_users(session)]
    actions = sorted({(a, audit_view.action_label(a)) for a in audit.known_actions(session)},
                     key=lambda p: p[1])
    return render(request, "audit.html", user, lines=audit_view.lines(session, rows),
                  total=total, page=number, pages=pages, filters=filters, page_url=page_url,
                  people=people, actions=actions,
                  notices=[n for n in (note_from, note_to) if n])
