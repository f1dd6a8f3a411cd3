"""The admin console: server-rendered pages under ``/admin``.

Admins sign in with their email and password (the same check and login throttle as the
token endpoint) and get a console session of their own: the gateway lets ``/admin`` through
without a bearer token, and these views never read the gateway's identity headers. Every
view but sign-in needs a signed-in admin; every request that changes something needs the
form's CSRF token; every response carries the headers of ``headers.py``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import NotFound

from shopstack_common.flask_adapter import error_response
from shopstack_common.problems import (
    CONFLICT,
    EMAIL_TAKEN,
    INVALID_CURSOR,
    LAST_ADMIN,
    TOO_MANY_FAILED_LOGINS,
    ProblemError,
)
from shopstack_users.accounts import service as accounts
from shopstack_users.accounts.models import User
from shopstack_users.audit import service as audit
from shopstack_users.config import UsersSettings
from shopstack_users.console import headers, service
from shopstack_users.console.forms import (
    AuditFilterForm,
    ClientForm,
    ProfileForm,
    RolesForm,
    SignInForm,
    UserFilterForm,
)
from shopstack_users.resources import resources
from shopstack_users.tokens import service as tokens

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Signs the session cookie and the CSRF tokens in development and tests when
# CONSOLE_SECRET_KEY is not set; never used anywhere else (see ``install``).
DEVELOPMENT_SECRET_KEY = "shopstack console: development only"  # noqa: S105
COOKIE_NAME = "shopstack_console"
USERS_PER_PAGE = 25
EVENTS_PER_PAGE = 50
# Domain refusals a console form shows next to itself instead of an error page.
FORM_REFUSALS = (LAST_ADMIN, EMAIL_TAKEN, CONFLICT)

console = Blueprint(
    "console",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
)
login_manager = LoginManager()
csrf = CSRFProtect()


def install(app: Flask, settings: UsersSettings) -> None:
    """Serve the console on ``app``: its session cookie, CSRF protection, Flask-Login and
    the blueprint. Outside development and test it needs ``CONSOLE_SECRET_KEY``; without
    one the console is not served (``/admin`` is a 404) and a line says so."""
    secret = settings.console_secret_key
    if secret is None and not settings.is_development:
        logger.warning("admin console off: CONSOLE_SECRET_KEY is not set")
        return
    app.config.update(
        SECRET_KEY=secret.get_secret_value() if secret else DEVELOPMENT_SECRET_KEY,
        SESSION_COOKIE_NAME=COOKIE_NAME,
        # The API never reads it; browsers send it to the console only.
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not settings.is_development,
        # CSRF is checked by the console's own before_request, not on the API's routes
        # (bearer tokens, no cookies); a token lives as long as the session it belongs to.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=settings.console_absolute_timeout_seconds,
    )
    app.session_interface = ConsoleSessionInterface()
    csrf.init_app(app)
    login_manager.init_app(app)
    app.register_blueprint(console)


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, saved only for requests to the console. Flask adds
    ``Vary: Cookie`` to any answer whose request merely looked at the session (Flask-Login
    does, on every request); a browser never sends the console's cookie to the API, so the
    API's answers (the JWKS, cacheable by anyone) must not say they vary by it."""

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        prefix = self.get_cookie_path(app).rstrip("/")
        if request.path == prefix or request.path.startswith(prefix + "/"):
            super().save_session(app, session, response)


def _timeouts() -> service.Timeouts:
    settings = resources().settings
    return service.Timeouts(
        idle=timedelta(seconds=settings.console_idle_timeout_seconds),
        absolute=timedelta(seconds=settings.console_absolute_timeout_seconds),
    )


def _address() -> str:
    # The client as the login throttle and the gateway's rate limit see it (ProxyFix).
    return request.remote_addr or "unknown"


# -- sessions -------------------------------------------------------------------------------

# The server-side session is the one that counts; the address may change (a phone moving
# between networks), so Flask-Login's own session protection stays off.
login_manager.session_protection = None


@login_manager.user_loader
def _load_admin(session_id: str) -> service.SignedInAdmin | None:
    admin = service.load_session(
        sessions=resources().sessions, timeouts=_timeouts(), session_id=session_id
    )
    if admin is None:
        session.clear()
        flash("Your console session has ended. Sign in again.", "info")
    return admin


@login_manager.unauthorized_handler
def _to_sign_in() -> ResponseReturnValue:
    return redirect(url_for("console.sign_in", next=request.full_path.rstrip("?")))


def _admin() -> service.SignedInAdmin:
    admin: service.SignedInAdmin = current_user._get_current_object()
    return admin


def _actor() -> audit.Actor:
    return _admin().actor(_address())


def _safe_next(target: str | None) -> str:
    """Only a path of the console itself: never another site (an open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and parts.path.startswith("/admin"):
            return target
    return url_for("console.dashboard")


# -- every request --------------------------------------------------------------------------


@console.before_request
def _check_csrf() -> None:
    # Every state-changing request of the console carries the form's token (CSRFError: 400).
    csrf.protect()


@console.after_request
def _security_headers(response: Response) -> Response:
    cache_control = headers.NO_STORE
    if request.endpoint == "console.static":
        filename = (request.view_args or {}).get("filename", "")
        versioned = request.args.get("v") == _asset_version(filename)
        cache_control = headers.IMMUTABLE if versioned else headers.REVALIDATE
    return headers.secure(response, cache_control=cache_control)


@functools.cache
def _asset_version(filename: str) -> str | None:
    path = STATIC / filename
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@console.app_template_global()
def asset_url(filename: str) -> str:
    return url_for("console.static", filename=filename, v=_asset_version(filename))


@console.app_template_filter("when")
def _when(value: datetime | str | None) -> str:
    """A moment in UTC; also one another API sent as ISO 8601 text (shown as sent if not)."""
    moment: datetime | None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    else:
        moment = value
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@console.errorhandler(Exception)
def _error_page(error: Exception) -> tuple[str, int, dict[str, str]]:
    """The same answer the API would give (status, title, detail), as a page."""
    answer = error_response(error, database_log=resources().database_log)
    problem = answer.get_json()
    kept = {k: v for k, v in answer.headers.items() if k in {"Retry-After", "Allow"}}
    return render_template("console/error.html", problem=problem), answer.status_code, kept


@console.route("/<path:anything>")
def _nothing_here(anything: str) -> NoReturn:
    raise NotFound(f"Nothing at /admin/{anything}.")


# -- sign in and out ------------------------------------------------------------------------


@console.route("/login", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = SignInForm()
    status, extra_headers = 200, {}
    if form.is_submitted():
        status = 422
    if form.validate_on_submit():
        try:
            admin = service.sign_in(
                sessions=resources().sessions,
                throttle=resources().login_throttle,
                timeouts=_timeouts(),
                email=form.email.data or "",
                password=form.password.data or "",
                address=_address(),
                user_agent=request.user_agent.string,
            )
        except service.SignInRefused:
            form.form_errors.append(
                "Wrong email or password, or this account may not use the console."
            )
        except ProblemError as error:
            if error.problem is not TOO_MANY_FAILED_LOGINS:
                raise
            status, extra_headers = error.status, error.headers
            minutes = -(-int(error.headers.get("Retry-After", "60")) // 60)
            form.form_errors.append(
                f"Too many wrong passwords for this account from this address. "
                f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
            )
        else:
            # A new session: nothing from before sign-in (a planted cookie, an old CSRF
            # token) carries over, and the session id is a new one (``service.sign_in``).
            session.clear()
            login_user(admin)
            flash(f"Signed in as {admin.email}.", "success")
            return redirect(_safe_next(request.args.get("next")))
    page = render_template("console/login.html", form=form)
    return page, status, extra_headers


@console.post("/logout")
@login_required
def sign_out() -> ResponseReturnValue:
    service.sign_out(sessions=resources().sessions, admin=_admin(), address=_address())
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("console.sign_in"))


# -- dashboard ------------------------------------------------------------------------------


@console.get("")
@login_required
def dashboard() -> str:
    figures = service.dashboard(sessions=resources().sessions)
    return render_template("console/dashboard.html", figures=figures)


# -- users ----------------------------------------------------------------------------------


@console.get("/users")
@login_required
def users() -> ResponseReturnValue:
    form = UserFilterForm(formdata=request.args)
    if not form.validate():
        return render_template("console/users.html", form=form, users=[], next_url=None), 422
    filters = {"email_prefix": form.email_prefix.data or None, "role": form.role.data or None}
    try:
        found, next_cursor = accounts.list_users(
            sessions=resources().sessions,
            limit=USERS_PER_PAGE,
            cursor=form.cursor.data or None,
            **filters,
        )
    except ProblemError as error:
        if error.problem is not INVALID_CURSOR:
            raise
        form.form_errors.append("That page link is not valid any more; here is the first page.")
        return render_template("console/users.html", form=form, users=[], next_url=None), 422
    query: dict[str, Any] = {k: v for k, v in filters.items() if v}
    next_url = url_for("console.users", **query, cursor=next_cursor) if next_cursor else None
    first_url = url_for("console.users", **query) if form.cursor.data else None
    return render_template(
        "console/users.html", form=form, users=found, next_url=next_url, first_url=first_url
    )


class UserForms:
    """The forms of one user's page with fields, each with a prefix so their ids differ. Its
    buttons (disable, enable, sign out everywhere) are forms with only the CSRF token."""

    def __init__(self, user: User, **bound: FlaskForm) -> None:
        self.profile = bound.get("profile") or ProfileForm(
            prefix="profile", formdata=None, full_name=user.full_name
        )
        self.roles = bound.get("roles") or RolesForm(
            prefix="roles", formdata=None, roles=list(user.roles)
        )


def _user_page(
    user_id: uuid.UUID, *, status: int = 200, refusal: str | None = None, **bound: FlaskForm
) -> tuple[str, int]:
    found = resources()
    user, sign_ins = service.user_with_sign_ins(sessions=found.sessions, user_id=user_id)
    orders = found.orders_api.recent_orders(user.id)
    page = render_template(
        "console/user.html",
        user=user,
        sign_ins=sign_ins,
        orders=orders,
        forms=UserForms(user, **bound),
        refusal=refusal,
        access_token_minutes=-(-found.settings.access_token_ttl_seconds // 60),
    )
    return page, status


def _refused(error: ProblemError, user_id: uuid.UUID, **bound: FlaskForm) -> tuple[str, int]:
    if error.problem not in FORM_REFUSALS:
        raise error
    return _user_page(user_id, status=error.status, refusal=error.detail, **bound)


@console.get("/users/<uuid:user_id>")
@login_required
def user(user_id: uuid.UUID) -> tuple[str, int]:
    return _user_page(user_id)


@console.post("/users/<uuid:user_id>/profile")
@login_required
def update_profile(user_id: uuid.UUID) -> ResponseReturnValue:
    form = ProfileForm(prefix="profile")
    if not form.validate():
        return _user_page(user_id, status=422, profile=form)
    found = resources()
    try:
        accounts.update_user(
            sessions=found.sessions,
            redis_cache=found.redis,
            actor=_actor(),
            user_id=user_id,
            full_name=form.full_name.data,
        )
    except ProblemError as error:
        return _refused(error, user_id, profile=form)
    flash("Name saved.", "success")
    return redirect(url_for("console.user", user_id=user_id))


@console.post("/users/<uuid:user_id>/roles")
@login_required
def update_roles(user_id: uuid.UUID) -> ResponseReturnValue:
    form = RolesForm(prefix="roles")
    if not form.validate():
        return _user_page(user_id, status=422, roles=form)
    found = resources()
    try:
        changed = accounts.set_roles(
            sessions=found.sessions,
            redis_cache=found.redis,
            actor=_actor(),
            user_id=user_id,
            roles=form.roles.data or [],
        )
    except ProblemError as error:
        return _refused(error, user_id, roles=form)
    flash(
        f"Roles of {changed.email}: {', '.join(sorted(changed.roles))}. Their access tokens "
        "carry the new roles from their next refresh.",
        "success",
    )
    return redirect(url_for("console.user", user_id=user_id))


def _set_active(user_id: uuid.UUID, *, active: bool) -> ResponseReturnValue:
    found = resources()
    try:
        changed = accounts.update_user(
            sessions=found.sessions,
            redis_cache=found.redis,
            actor=_actor(),
            user_id=user_id,
            is_active=active,
        )
    except ProblemError as error:
        return _refused(error, user_id)
    if active:
        flash(f"{changed.email} is enabled and may sign in again.", "success")
    else:
        flash(f"{changed.email} is disabled; their refresh tokens are revoked.", "success")
    return redirect(url_for("console.user", user_id=user_id))


@console.post("/users/<uuid:user_id>/disable")
@login_required
def disable_user(user_id: uuid.UUID) -> ResponseReturnValue:
    return _set_active(user_id, active=False)


@console.post("/users/<uuid:user_id>/enable")
@login_required
def enable_user(user_id: uuid.UUID) -> ResponseReturnValue:
    return _set_active(user_id, active=True)


@console.post("/users/<uuid:user_id>/sign-out-everywhere")
@login_required
def sign_out_everywhere(user_id: uuid.UUID) -> ResponseReturnValue:
    ended = service.sign_out_everywhere(
        sessions=resources().sessions, actor=_actor(), user_id=user_id
    )
    flash(
        f"Signed out everywhere: {ended.refresh_token_families} sign-in(s) revoked, "
        f"{ended.console_sessions} console session(s) ended. Access tokens already issued "
        "expire within their lifetime.",
        "success",
    )
    return redirect(url_for("console.user", user_id=user_id))


# -- OAuth clients --------------------------------------------------------------------------


def _clients_page(form: ClientForm | None = None, status: int = 200) -> tuple[str, int]:
    page = render_template(
        "console/clients.html",
        clients=tokens.list_clients(sessions=resources().sessions),
        form=form or ClientForm(formdata=None),
    )
    return page, status


@console.get("/clients")
@login_required
def clients() -> tuple[str, int]:
    return _clients_page()


@console.post("/clients")
@login_required
def create_client() -> tuple[str, int]:
    form = ClientForm()
    if not form.validate():
        return _clients_page(form, 422)
    found = resources()
    try:
        client, secret = tokens.create_client(
            sessions=found.sessions,
            passwords=found.passwords,
            actor=_actor(),
            client_id=form.client_id.data or "",
            scopes=form.scope_list,
            description=form.description.data or "",
        )
    except ProblemError as error:
        if error.problem is not CONFLICT:
            raise
        form.client_id.errors = [*form.client_id.errors, "A client with this id exists."]
        return _clients_page(form, error.status)
    page = render_template(
        "console/client_secret.html", client_id=client.client_id, secret=secret, created=True
    )
    return page, 201


@console.post("/clients/<client_id>/rotate")
@login_required
def rotate_client_secret(client_id: str) -> tuple[str, int]:
    found = resources()
    secret = tokens.rotate_client_secret(
        sessions=found.sessions, passwords=found.passwords, actor=_actor(), client_id=client_id
    )
    page = render_template(
        "console/client_secret.html", client_id=client_id, secret=secret, created=False
    )
    return page, 200


@console.post("/clients/<client_id>/delete")
@login_required
def delete_client(client_id: str) -> ResponseReturnValue:
    tokens.delete_client(sessions=resources().sessions, actor=_actor(), client_id=client_id)
    flash(f"Client {client_id} deleted. Tokens it holds expire within their lifetime.", "success")
    return redirect(url_for("console.clients"))


# -- signing keys and the audit log -------------------------------------------------------


@console.get("/keys")
@login_required
def keys() -> str:
    found = resources()
    return render_template(
        "console/keys.html",
        keys=service.signing_keys(found.keys),
        reload_seconds=found.settings.jwt_signing_keys_reload_seconds,
    )


@console.get("/audit")
@login_required
def audit_log() -> ResponseReturnValue:
    form = AuditFilterForm(formdata=request.args)
    if not form.validate():
        return render_template("console/audit.html", form=form, events=[], next_url=None), 422
    where = audit.AuditFilter(
        action=form.action.data or None,
        actor_prefix=form.actor.data or None,
        target_prefix=form.target.data or None,
        since=datetime.combine(form.since.data, time(), UTC) if form.since.data else None,
        until=(
            datetime.combine(form.until.data + timedelta(days=1), time(), UTC)
            if form.until.data
            else None
        ),
    )
    try:
        events, next_cursor = audit.list_events(
            sessions=resources().sessions,
            limit=EVENTS_PER_PAGE,
            where=where,
            cursor=form.cursor.data or None,
        )
    except ProblemError as error:
        if error.problem is not INVALID_CURSOR:
            raise
        form.form_errors.append("That page link is not valid any more; here is the first page.")
        return render_template("console/audit.html", form=form, events=[], next_url=None), 422
    query: dict[str, Any] = {
        name: request.args[name]
        for name in ("action", "actor", "target", "since", "until")
        if request.args.get(name)
    }
    next_url = url_for("console.audit_log", **query, cursor=next_cursor) if next_cursor else None
    first_url = url_for("console.audit_log", **query) if form.cursor.data else None
    return render_template(
        "console/audit.html",
        form=form,
        events=events,
        actions=audit.ACTIONS,
        next_url=next_url,
        first_url=first_url,
    )
