"""The audit log in words: each recorded action as a sentence an admin reads ("Ana granted Lee the moderator role").

The entry itself (action key, subject, JSON detail) is what the hash chain covers and stays as it is; these
sentences are only how the admin pages show it, with the raw entry one click away.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from app.core.i18n import N_
from app.models.audit import AuditEntry

# One sentence per action the code records (tests/test_audit_sentences.py finds them in the code and fails on an
# action without one). Placeholders: `actor`, `subject` (the subject in words), and the entry's detail fields.
SENTENCES: dict[str, str] = {
    "role.granted": N_("%(actor)s granted %(account)s the %(role)s role."),
    "role.revoked": N_("%(actor)s took the %(role)s role from %(account)s."),
    "list.added": N_("%(actor)s added “%(name)s” to the %(list)s."),
    "list.offered": N_("%(actor)s offered “%(name)s” again in the %(list)s."),
    "list.withdrawn": N_("%(actor)s stopped offering “%(name)s” in the %(list)s (existing uses stay)."),
    "eligibility.imported": N_("%(actor)s imported the eligibility list: %(members)s members may sign."),
    "eligibility.cleared": N_("%(actor)s cleared the eligibility list: every confirmed member may sign."),
    "settings.changed": N_("%(actor)s changed the organization's rules: %(changes)s."),
    "branding.changed": N_("%(actor)s changed the organization's look: %(changes)s."),
    "petition.opened": N_("%(actor)s opened the petition “%(title)s” for signatures."),
    "petition.rejected": N_("%(actor)s rejected the petition “%(title)s” (reason: %(reason)s)."),
    "petition.hidden": N_("%(actor)s hid the petition “%(title)s” (reason: %(reason)s)."),
    "petition.restored": N_("%(actor)s made the petition “%(title)s” visible again."),
    "petition.export": N_("%(actor)s exported the %(kind)s of %(subject)s as %(format)s (from the %(via)s)."),
    "signatures.void_previewed": N_(
        "%(actor)s checked a rule of %(rule_entries)s addresses or domains against "
        "%(subject)s: it matches %(matched)s signatures."
    ),
    "signatures.voided": N_("%(actor)s voided %(matched)s signatures on %(subject)s (reason: %(reason)s)."),
    "retention.erased": N_(
        "%(actor)s erased the signers' details of %(signatures)s signatures on %(subject)s, "
        "%(retention_days)s days after it closed."
    ),
    "comment.hidden": N_("%(actor)s hid %(subject)s on petition %(petition)s (reason: %(reason)s)."),
    "comment.restored": N_("%(actor)s showed %(subject)s on petition %(petition)s again."),
    "comment.kept": N_("%(actor)s kept %(subject)s on petition %(petition)s as it was, answering its flags."),
    "comments.locked": N_("%(actor)s closed the discussion on %(subject)s (reason: %(reason)s)."),
    "comments.unlocked": N_("%(actor)s reopened the discussion on %(subject)s."),
    "keys.rotated": N_("%(actor)s rotated the %(subject)s: %(resealed)s values sealed again under it."),
}

FALLBACK = N_("%(actor)s: %(action)s on %(subject)s.")

LIST_NAMES = {
    "category": N_("list of categories"),
    "department": N_("list of departments"),
    "location": N_("list of locations"),
}

# The organization's settings as the admin pages name them, for the "changed" sentences.
SETTING_NAMES = {
    "allowed_email_domains": N_("email domains"),
    "response_threshold": N_("response threshold"),
    "escalation_threshold": N_("escalation threshold"),
    "response_days": N_("days to respond"),
    "sponsors_required": N_("sponsors needed"),
    "name": N_("name"),
    "logo": N_("logo"),
    "accent_colour": N_("accent colour"),
}

WORDS = {
    "tally": N_("tally"),
    "signers": N_("list of signers"),
    "page": N_("web page"),
    "api": N_("API"),
    "command line": N_("command line"),
}


def detail_of(entry: AuditEntry) -> dict[str, Any]:
    try:
        detail = json.loads(entry.detail)
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def _plain(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value) or "—"
    return str(value)


def _changes(detail: Mapping[str, Any], translate: Callable[[str], str]) -> str:
    parts = []
    for name, change in detail.items():
        label = translate(SETTING_NAMES.get(name, name.replace("_", " ")))
        if isinstance(change, dict) and {"from", "to"} <= change.keys():
            parts.append(
                translate(N_("%(setting)s from %(before)s to %(after)s"))
                % {"setting": label, "before": _plain(change["from"]), "after": _plain(change["to"])}
            )
        else:
            parts.append(f"{label}: {_plain(change)}")
    return "; ".join(parts) or "—"


def _subject(subject: str, translate: Callable[[str], str]) -> str:
    kind, _, number = subject.partition(" ")
    if number.isdigit() and kind in ("petition", "comment", "account"):
        words = {
            "petition": N_("petition %(number)s"),
            "comment": N_("comment %(number)s"),
            "account": N_("account %(number)s"),
        }
        return translate(words[kind]) % {"number": number}
    return subject


def sentence(entry: AuditEntry, translate: Callable[[str], str]) -> str:
    """The entry as a sentence in the deployment's language; an unknown action or detail still reads plainly."""
    detail = detail_of(entry)
    params: dict[str, str] = {name: _plain(value) for name, value in detail.items()}
    params.update(actor=entry.actor_name, action=entry.action, subject=_subject(entry.subject, translate))
    if entry.action in ("list.added", "list.offered", "list.withdrawn"):
        params["list"] = translate(LIST_NAMES.get(entry.subject, entry.subject))
    if entry.action in ("settings.changed", "branding.changed"):
        params["changes"] = _changes(detail, translate)
    for name in ("kind", "via"):
        if name in detail:
            params[name] = translate(WORDS.get(str(detail[name]), str(detail[name])))
    if "format" in detail:
        params["format"] = str(detail["format"]).upper()
    template = SENTENCES.get(entry.action)
    if template is not None:
        try:
            return translate(template) % params
        except (KeyError, TypeError, ValueError):
            pass  # an entry written before its detail took this shape: the plain form below still reads
    return translate(FALLBACK) % params
