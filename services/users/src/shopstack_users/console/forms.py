"""The console's forms (Flask-WTF). Every form that changes something carries the CSRF token;
the filter forms are read from the query string and change nothing, so they carry none."""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    widgets,
)
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from shopstack_users.accounts.models import ROLES
from shopstack_users.audit.service import ACTIONS
from shopstack_users.fields import is_storable
from shopstack_users.passwords import MAX_LENGTH as PASSWORD_MAX_LENGTH
from shopstack_users.tokens.service import CLIENT_ID_PATTERN, SCOPE_TOKEN

ROLE_CHOICES = [SelectChoice(role) for role in ROLES]
_SCOPE_TOKEN = re.compile(SCOPE_TOKEN)


def storable(_form: Any, field: Any) -> None:
    """PostgreSQL cannot store a NUL, UTF-8 cannot hold a lone surrogate (as in the API)."""
    if isinstance(field.data, str) and not is_storable(field.data):
        raise ValidationError("Contains a character that cannot be stored.")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class QueryForm(FlaskForm):
    """A filter read from the query string: no CSRF token (it changes nothing), and no
    prefix on the names, so its URLs stay short and can be shared."""

    class Meta:
        csrf = False


class SignInForm(FlaskForm):
    email = StringField(
        "Email",
        validators=[DataRequired(), Length(max=254), storable],
        filters=[_strip],
        render_kw={"autocomplete": "username", "autofocus": True, "inputmode": "email"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=PASSWORD_MAX_LENGTH), storable],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Sign in")


class UserFilterForm(QueryForm):
    email_prefix = StringField(
        "Email starts with",
        validators=[Optional(), Length(max=254), storable],
        filters=[_strip],
        render_kw={"inputmode": "email", "type": "search"},
    )
    role = SelectField("Role", choices=[SelectChoice("", "any role"), *ROLE_CHOICES], default="")
    cursor = HiddenField(validators=[Optional(), Length(max=200)])
    submit = SubmitField("Filter")


class ProfileForm(FlaskForm):
    full_name = StringField(
        "Full name",
        validators=[DataRequired(), Length(min=1, max=200), storable],
        filters=[_strip],
        render_kw={"autocomplete": "off"},
    )
    submit = SubmitField("Save name")


class CheckboxesField(SelectMultipleField):
    """A choice of several, as checkboxes (each with its own label)."""

    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def at_least_one(_form: Any, field: Any) -> None:
    # Not DataRequired: that marks every checkbox `required`, as if each had to be ticked.
    if not field.data:
        raise ValidationError("Choose at least one role.")


class RolesForm(FlaskForm):
    roles = CheckboxesField("Roles", choices=ROLE_CHOICES, validators=[at_least_one])
    submit = SubmitField("Save roles")


class ClientForm(FlaskForm):
    client_id = StringField(
        "Client id",
        validators=[
            DataRequired(),
            Regexp(
                CLIENT_ID_PATTERN,
                message="2 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit.",
            ),
        ],
        filters=[_strip],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    scopes = StringField(
        "Scopes",
        description="Separated by spaces, e.g. orders:read users:read.",
        validators=[Optional(), Length(max=1000)],
        filters=[_strip],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    description = StringField(
        "Description",
        validators=[Optional(), Length(max=200), storable],
        filters=[_strip],
        render_kw={"autocomplete": "off"},
    )
    submit = SubmitField("Create client")

    def validate_scopes(self, field: StringField) -> None:
        bad = [s for s in (field.data or "").split() if not _SCOPE_TOKEN.fullmatch(s)]
        if bad:
            raise ValidationError(f"Not scope tokens: {' '.join(bad)}.")

    @property
    def scope_list(self) -> list[str]:
        return (self.scopes.data or "").split()


class AuditFilterForm(QueryForm):
    action = SelectField(
        "Action",
        choices=[
            SelectChoice("", "any action"),
            *(SelectChoice(action, label) for action, label in ACTIONS.items()),
        ],
        default="",
    )
    actor = StringField(
        "By (email starts with)",
        validators=[Optional(), Length(max=254), storable],
        filters=[_strip],
        render_kw={"type": "search"},
    )
    target = StringField(
        "On (email or client id starts with, or an id)",
        validators=[Optional(), Length(max=254), storable],
        filters=[_strip],
        render_kw={"type": "search"},
    )
    since = DateField("From (day, UTC)", validators=[Optional()])
    until = DateField("Until (day, UTC, inclusive)", validators=[Optional()])
    cursor = HiddenField(validators=[Optional(), Length(max=20)])
    submit = SubmitField("Filter")

    def validate_until(self, field: DateField) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError("Must not be before the first day.")
