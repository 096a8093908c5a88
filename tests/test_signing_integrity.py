"""Keeping the tally honest: who may sign, voiding signatures by rule, unusual signing, recount, thresholds."""

from __future__ import annotations

import gc
import html
import secrets
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.core.clock import FrozenClock
from app.core.database import build_engine, build_sessionmaker
from app.core.runtime import Runtime, build_runtime
from app.core.settings import Settings
from app.core.templating import build_templates
from app.models.accounts import Role, User
from app.models.petitions import Petition, PetitionEvent
from app.models.signatures import Invalidation, Signature
from app.petitions import service as petitions
from app.signatures import integrity
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, count_rows, make_settings, make_user, outbox, sign_in_as
from tests.server_process import migrated_sqlite

NewBrowser = Callable[[], Browser]
SignedPetition = tuple[Petition, dict[str, User]]


@pytest.fixture
def settings(request: pytest.FixtureRequest, database_url: str) -> Settings:
    """The suite's settings, with overrides for the tests that parametrize `settings` indirectly."""
    return make_settings(database_url, **getattr(request, "param", {}))


# -- helpers --------------------------------------------------------------------------------------------------


def page_text(response: Any) -> str:
    return html.unescape(response.text)


def flat(response: Any) -> str:
    return " ".join(page_text(response).split())


def as_user(new_browser: NewBrowser, db: Session, user: User) -> Browser:
    return sign_in_as(new_browser(), db, user)


def signature_count(db: Session, petition: Petition) -> int:
    db.expire_all()
    return int(
        db.execute(text("SELECT signature_count FROM petitions WHERE id = :id"), {"id": petition.id}).scalar_one()
    )


def sign(db: Session, rt: Runtime, petition: Petition, user: User, visibility: str = "public") -> None:
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=user, visibility=visibility, notify_updates=False)
    db.commit()


def sign_url(petition: Petition) -> str:
    return f"/petitions/{petition.id}/sign"


def upload(admin: Browser, content: bytes, name: str = "members.csv") -> Any:
    """Import a CSV file through the admin page."""
    return admin.post("/admin/eligibility", {}, files={"file": (name, content, "text/csv")})


# -- eligibility ----------------------------------------------------------------------------------------------

MEMBERS_CSV = (
    b"\xef\xbb\xbfname,email,manager\n"
    b"Ana Alves,ana@example.org,boss@elsewhere.net\n"
    b"Ben Brandt, BEN@Example.com ,\n"
    b"Not a member,contractor@elsewhere.net,\n"
)


def test_an_imported_list_decides_who_can_sign_and_keeps_only_digests(
    db: Session, rt: Runtime, new_browser: NewBrowser
) -> None:
    petition = factories.open_petition(db, rt)
    admin = as_user(new_browser, db, make_user(db, email="admin@example.org", roles=(Role.admin,)))
    listed = make_user(db, email="ana@example.org", name="Ana Alves")
    listed_other_domain = make_user(db, email="ben@example.com", name="Ben Brandt")
    unlisted = make_user(db, email="carl@example.org", name="Carl Unlisted")

    response = upload(admin, MEMBERS_CSV)

    assert response.status_code == 303 and response.headers["location"] == "/admin/eligibility"
    page = flat(admin.get("/admin/eligibility"))
    assert "The list now holds 2 members; only they can sign." in page
    assert "if their address is on the imported list of 2 members" in page
    digests = [row[0] for row in db.execute(text("SELECT digest FROM eligible_addresses"))]
    assert len(digests) == 2
    assert not any("@" in value or "ana" in value or "example" in value for value in digests)
    stored = [str(value) for row in db.execute(text("SELECT * FROM eligible_addresses")) for value in row]
    assert not any("@" in value for value in stored), "no address is stored, in any column"

    refused = as_user(new_browser, db, unlisted).post(sign_url(petition), {"visibility": "public"})
    assert refused.status_code == 403
    assert "Your address is not on the list of members who can sign." in page_text(refused)
    assert count_rows(db, "signatures") == 0 and signature_count(db, petition) == 0
    api = as_user(new_browser, db, unlisted).api(
        "POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "organizers"}
    )
    assert api.status_code == 403 and "not on the list" in api.json()["error"]["message"]
    for member in (listed, listed_other_domain):
        assert as_user(new_browser, db, member).post(sign_url(petition), {"visibility": "public"}).status_code == 303
    assert signature_count(db, petition) == 2


def test_a_file_without_an_allowed_address_is_refused_and_keeps_the_list(
    db: Session, rt: Runtime, new_browser: NewBrowser
) -> None:
    admin = as_user(new_browser, db, make_user(db, email="admin@example.org", roles=(Role.admin,)))
    assert upload(admin, MEMBERS_CSV).status_code == 303
    before = sorted(row[0] for row in db.execute(text("SELECT digest FROM eligible_addresses")))

    response = upload(admin, b"name,email\nOutside,someone@elsewhere.net\nNobody,no address here\n")

    assert response.status_code == 422
    assert "The file holds no address at example.org or example.com." in page_text(response)
    db.expire_all()
    assert sorted(row[0] for row in db.execute(text("SELECT digest FROM eligible_addresses"))) == before
    empty = admin.post("/admin/eligibility", {})
    assert empty.status_code == 422 and count_rows(db, "eligible_addresses") == 2


def test_a_list_of_several_megabytes_is_imported_and_a_larger_one_refused(
    db: Session,
    rt: Runtime,
    new_browser: NewBrowser,
) -> None:
    admin = sign_in_as(new_browser(), db, make_user(db, email="root@example.org", roles=(Role.admin,)))
    rows = b"".join(b"Member %d,member%d@example.org\n" % (number, number) for number in range(100_000))
    assert 1024 * 1024 < len(rows) < 5 * 1024 * 1024, "more than a form may carry, within the list's limit"
    assert upload(admin, b"name,email\n" + rows).status_code == 303
    assert count_rows(db, "eligible_addresses") == 100_000
    too_large = upload(admin, b"x" * (6 * 1024 * 1024))
    assert too_large.status_code == 413
    assert count_rows(db, "eligible_addresses") == 100_000, "the list is unchanged"


def test_clearing_the_list_lets_every_confirmed_member_sign_again(
    db: Session, rt: Runtime, new_browser: NewBrowser
) -> None:
    petition = factories.open_petition(db, rt)
    admin = as_user(new_browser, db, make_user(db, email="admin@example.org", roles=(Role.admin,)))
    upload(admin, MEMBERS_CSV)
    signer = as_user(new_browser, db, make_user(db, email="carl@example.org"))
    assert signer.post(sign_url(petition), {"visibility": "public"}).status_code == 403

    response = admin.post("/admin/eligibility/clear")

    assert response.status_code == 303
    assert "The list is cleared: every confirmed member can sign." in page_text(admin.get("/admin/eligibility"))
    assert count_rows(db, "eligible_addresses") == 0
    assert signer.post(sign_url(petition), {"visibility": "public"}).status_code == 303
    assert signature_count(db, petition) == 1


def test_a_cell_that_is_not_one_address_does_not_lock_its_member_out(
    db: Session, rt: Runtime, new_browser: NewBrowser
) -> None:
    petition = factories.open_petition(db, rt)
    admin = as_user(new_browser, db, make_user(db, email="admin@example.org", roles=(Role.admin,)))
    ana = as_user(new_browser, db, make_user(db, email="ana@example.org", name="Ana Alves"))

    response = upload(admin, b"name;email\nAna Alves;ana@example.org\n")

    # Either the file is refused as holding no address, or Ana is on the list it reports.
    assert response.status_code == 422 or ana.post(sign_url(petition), {"visibility": "public"}).status_code == 303


def test_an_uploaded_list_file_is_closed(db: Session, new_browser: NewBrowser) -> None:
    admin = as_user(new_browser, db, make_user(db, email="admin@example.org", roles=(Role.admin,)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        response = admin.post("/admin/eligibility", {}, files={"file": ("members.csv", MEMBERS_CSV, "text/csv")})
        gc.collect()
    assert response.status_code == 303
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize(
    "settings", [{"response_threshold": 1, "response_threshold_percent": 10}], indirect=True, ids=["10-percent"]
)
def test_a_percentage_threshold_counts_the_imported_list(db: Session, rt: Runtime, new_browser: NewBrowser) -> None:
    assert petitions.response_threshold(db=db, rt=rt) == 1, "without a list, the absolute threshold"
    admin = as_user(new_browser, db, make_user(db, email="admin@example.org", roles=(Role.admin,)))
    members = "\n".join(f"member{n}@example.org" for n in range(25)).encode()

    assert upload(admin, members).status_code == 303

    assert "Percentage thresholds count 25 eligible members." in flat(admin.get("/admin/eligibility"))
    assert petitions.response_threshold(db=db, rt=rt) == 3  # ceil(25 × 10 %)
    petition = factories.open_petition(db, rt)
    assert petition.response_threshold == 3
    db.expire_all()
    assert db.get_one(Petition, petition.id).response_threshold == 3


# -- voiding signatures ---------------------------------------------------------------------------------------


@pytest.fixture
def signed_petition(db: Session, rt: Runtime) -> SignedPetition:
    """An open petition signed by five people, two of them at example.com, where three more have accounts: a rule
    must cover at least min_group_size (5) confirmed accounts before it gets a count (issue #21)."""
    petition = factories.open_petition(db, rt, title="Keep the canteen open late")
    people = {
        email: make_user(db, email=email, name=name)
        for email, name in (
            ("alice@example.org", "Alice Compromised"),
            ("keep@example.org", "Kim Kept"),
            ("carol@example.com", "Carol Contractor"),
            ("dan@example.com", "Dan Contractor"),
            ("eve@example.org", "Eve Everyday"),
        )
    }
    for user in people.values():
        sign(db, rt, petition, user)
    for email in ("frank@example.com", "gus@example.com", "hal@example.com"):
        make_user(db, email=email, name="Did Not Sign", password=None)
    assert signature_count(db, petition) == 5
    return petition, people


RULE = "Alice@example.org\n@example.com"
REASON = "Accounts taken over in the phishing campaign"


def test_a_moderator_previews_then_voids_signatures_by_rule(
    db: Session, rt: Runtime, new_browser: NewBrowser, signed_petition: SignedPetition
) -> None:
    petition, people = signed_petition
    moderator = as_user(new_browser, db, factories.moderator(db))
    base = f"/moderation/petitions/{petition.id}/signatures"
    assert "None." in flat(moderator.get(base))

    preview = moderator.post(f"{base}/preview", {"rule": RULE, "reason": REASON})

    assert preview.status_code == 200
    page = flat(preview)
    assert "3 counted signatures match" in page and "Void 3 signatures" in page
    assert '<input type="hidden" name="expected" value="3">' in page
    assert signature_count(db, petition) == 5 and count_rows(db, "invalidations") == 0

    response = moderator.post(f"{base}/void", {"rule": RULE, "reason": REASON, "expected": "3"})

    assert response.status_code == 303 and response.headers["location"] == base
    history = flat(moderator.get(base))
    assert "3 signatures voided and recorded." in history
    assert "voided 3 (2 entries: @example.com, 1 address): " + REASON in history
    assert signature_count(db, petition) == 2
    rows = {row.account_id: row for row in db.scalars(select(Signature).where(Signature.petition_id == petition.id))}
    assert len(rows) == 5, "voided signatures stay on record"
    voided = {email for email, user in people.items() if rows[user.id].invalidation_id is not None}
    assert voided == {"alice@example.org", "carol@example.com", "dan@example.com"}
    [record] = db.scalars(select(Invalidation).where(Invalidation.petition_id == petition.id))
    assert record.matched == 3 and record.reason == REASON
    assert record.rule == "2 entries: @example.com, 1 address"
    assert {rows[people[e].id].invalidation_id for e in voided} == {record.id}
    [event] = db.scalars(
        select(PetitionEvent).where(PetitionEvent.petition_id == petition.id, PetitionEvent.kind == "signatures_voided")
    )
    assert event.detail == f"3 signatures voided: {REASON}"
    public = page_text(new_browser().get(f"/petitions/{petition.id}"))
    assert "<strong>2</strong> signatures" in public
    assert "Alice Compromised" not in public and "Carol Contractor" not in public and "Kim Kept" in public

    alice = as_user(new_browser, db, people["alice@example.org"])
    panel = flat(alice.get(f"/petitions/{petition.id}"))
    assert "Your signature was voided by the moderators and is not counted." in panel
    withdraw = alice.post(f"/petitions/{petition.id}/withdraw")
    assert withdraw.status_code == 409 and "Your signature was voided by the moderators" in page_text(withdraw)
    assert alice.api("DELETE", f"/api/v1/petitions/{petition.id}/signature").status_code == 409
    again = alice.post(sign_url(petition), {"visibility": "public"})
    assert again.status_code == 409, "a voided signer cannot sign afresh"
    assert signature_count(db, petition) == 2 and count_rows(db, "signatures") == 5
    kept = as_user(new_browser, db, people["keep@example.org"])
    assert kept.post(f"/petitions/{petition.id}/withdraw").status_code == 303
    assert signature_count(db, petition) == 1


def test_every_preview_is_in_the_audit_log_without_the_addresses(
    db: Session, rt: Runtime, new_browser: NewBrowser, signed_petition: SignedPetition
) -> None:
    """A preview tells a moderator whether given addresses signed: admins see each one asked, not whom about."""
    import json

    from app.models.audit import AuditEntry

    petition, _people = signed_petition
    moderator_user = factories.moderator(db)
    moderator = as_user(new_browser, db, moderator_user)
    assert (
        moderator.post(
            f"/moderation/petitions/{petition.id}/signatures/preview", {"rule": RULE, "reason": REASON}
        ).status_code
        == 200
    )
    api = moderator.api(
        "POST",
        f"/api/v1/moderation/petitions/{petition.id}/invalidations/preview",
        {"rule": "@example.com\nnobody@example.org"},
    )
    assert api.status_code == 200 and api.json() == {"matched": 2}
    db.expire_all()
    entries = list(
        db.scalars(select(AuditEntry).where(AuditEntry.action == "signatures.void_previewed").order_by(AuditEntry.seq))
    )
    assert [(entry.actor_name, json.loads(entry.detail)) for entry in entries] == [
        (moderator_user.display_name, {"rule_entries": 2, "rule_domains": 1, "matched": 3}),
        (moderator_user.display_name, {"rule_entries": 2, "rule_domains": 1, "matched": 2}),
    ]
    assert not any("example" in entry.detail for entry in entries)


def test_confirming_a_stale_preview_changes_nothing(
    db: Session, rt: Runtime, new_browser: NewBrowser, signed_petition: SignedPetition
) -> None:
    petition, people = signed_petition
    moderator = as_user(new_browser, db, factories.moderator(db))
    base = f"/moderation/petitions/{petition.id}/signatures"
    assert "3 counted signatures match" in flat(moderator.post(f"{base}/preview", {"rule": RULE, "reason": REASON}))
    # Meanwhile one matching signer withdraws.
    assert (
        as_user(new_browser, db, people["dan@example.com"]).post(f"/petitions/{petition.id}/withdraw").status_code
        == 303
    )

    response = moderator.post(f"{base}/void", {"rule": RULE, "reason": REASON, "expected": "3"})

    assert response.status_code == 409
    assert "The rule now matches 2 signatures, not the 3 you previewed. Preview again before confirming." in flat(
        response
    )
    assert signature_count(db, petition) == 4
    assert count_rows(db, "invalidations") == 0
    assert db.scalar(select(Signature.id).where(Signature.invalidation_id.is_not(None))) is None
    assert db.scalar(select(PetitionEvent.id).where(PetitionEvent.kind == "signatures_voided")) is None
    for form, message in (
        ({"rule": RULE, "reason": REASON}, "Preview the rule first"),
        ({"rule": RULE, "reason": " ", "expected": "2"}, "Say why, in at most 500 characters"),
        (
            {"rule": "not an address", "reason": REASON, "expected": "2"},
            "Each entry must be an address (name@domain) or a domain (@domain).",
        ),
    ):
        refused = moderator.post(f"{base}/void", form)
        assert refused.status_code in (409, 422) and message in flat(refused)
    assert count_rows(db, "invalidations") == 0 and signature_count(db, petition) == 4


def test_only_moderators_void_signatures(
    db: Session, rt: Runtime, new_browser: NewBrowser, signed_petition: SignedPetition
) -> None:
    petition, _people = signed_petition
    creator = db.get_one(User, petition.creator_id)
    for user in (factories.worker(db), creator):
        browser = as_user(new_browser, db, user)
        assert (
            browser.post(
                f"/moderation/petitions/{petition.id}/signatures/void",
                {"rule": RULE, "reason": REASON, "expected": "3"},
            ).status_code
            == 403
        )
        assert (
            browser.api(
                "POST",
                f"/api/v1/moderation/petitions/{petition.id}/invalidations",
                {"rule": RULE, "reason": REASON, "expected": 3},
            ).status_code
            == 403
        )
    assert signature_count(db, petition) == 5 and count_rows(db, "invalidations") == 0


def test_voiding_through_the_api(
    db: Session, rt: Runtime, new_browser: NewBrowser, signed_petition: SignedPetition
) -> None:
    petition, people = signed_petition
    moderator = as_user(new_browser, db, factories.moderator(db))
    base = f"/api/v1/moderation/petitions/{petition.id}/invalidations"

    preview = moderator.api("POST", f"{base}/preview", {"rule": "@example.com"})

    assert preview.status_code == 200 and preview.json() == {"matched": 2}
    stale = moderator.api("POST", base, {"rule": "@example.com", "reason": REASON, "expected": 1})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert "not the 1 you previewed" in stale.json()["error"]["message"]
    assert signature_count(db, petition) == 5 and count_rows(db, "invalidations") == 0
    invalid = moderator.api("POST", f"{base}/preview", {"rule": "carol"})
    assert invalid.status_code == 422 and "rule" in invalid.json()["error"]["fields"]

    created = moderator.api("POST", base, {"rule": "@example.com", "reason": REASON, "expected": 2})

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["matched"] == 2 and body["rule"] == "1 entry: @example.com" and body["reason"] == REASON
    assert signature_count(db, petition) == 3
    assert db.get_one(Invalidation, body["id"]).matched == 2
    assert moderator.api("POST", f"{base}/preview", {"rule": "@example.com"}).json() == {"matched": 0}
    nothing = moderator.api("POST", base, {"rule": "@example.com", "reason": REASON, "expected": 0})
    assert nothing.status_code == 409 and "matches no counted signature" in nothing.json()["error"]["message"]
    carol = as_user(new_browser, db, people["carol@example.com"])
    assert carol.api("DELETE", f"/api/v1/petitions/{petition.id}/signature").status_code == 409
    assert signature_count(db, petition) == 3


def test_a_domain_rule_matches_that_domain_literally(
    db: Session, rt: Runtime, new_browser: NewBrowser, signed_petition: SignedPetition
) -> None:
    petition, _people = signed_petition
    moderator = as_user(new_browser, db, factories.moderator(db))
    preview = moderator.api(
        "POST", f"/api/v1/moderation/petitions/{petition.id}/invalidations/preview", {"rule": "@%\n@example.com"}
    )
    assert preview.json() == {"matched": 2}, "not every domain: '%' is no wildcard"


# -- unusual signing ------------------------------------------------------------------------------------------


def _add_signatures(db: Session, petition: Petition, hour: datetime, how_many: int) -> None:
    db.execute(
        insert(Signature),
        [
            {
                "id": secrets.token_hex(16),
                "petition_id": petition.id,
                "account_id": None,
                "visibility": "anonymous",
                "notify_updates": False,
                "signed_hour": hour,
            }
            for _ in range(how_many)
        ],
    )
    db.execute(
        text("UPDATE petitions SET signature_count = signature_count + :n WHERE id = :id"),
        {"n": how_many, "id": petition.id},
    )
    db.commit()


def _alerts(page: str) -> str:
    start = page.find("Unusual signing activity")
    return "" if start < 0 else page[start : page.find("</section>", start)]


@pytest.mark.parametrize("settings", [{"velocity_minimum": 3}], indirect=True, ids=["minimum-3"])
def test_a_burst_of_signatures_is_flagged_to_moderators(
    db: Session, rt: Runtime, clock: FrozenClock, new_browser: NewBrowser
) -> None:
    hot = factories.open_petition(db, rt, title="Suddenly very popular")
    steady = factories.open_petition(db, rt, title="Signed at a steady pace")
    quiet = factories.open_petition(db, rt, title="Barely signed at all")
    hour = clock.now().replace(minute=0, second=0, microsecond=0)
    _add_signatures(db, hot, hour, 10)
    for back in range(2, 26):  # one an hour through the day before
        _add_signatures(db, steady, hour - timedelta(hours=back), 1)
    _add_signatures(db, steady, hour, 4)  # 4 > velocity_minimum, but not 5 × its average of 1 an hour
    _add_signatures(db, quiet, hour, 2)  # fast but under velocity_minimum
    moderator = as_user(new_browser, db, factories.moderator(db))

    alerts = _alerts(flat(moderator.get("/moderation")))

    assert alerts, "the moderation page names unusual signing activity"
    assert f'<a href="/moderation/petitions/{hot.id}/signatures">Suddenly very popular</a>' in alerts
    assert "10 signatures since 08:00 UTC, against 0.0 an hour the day before" in alerts
    assert steady.title not in alerts and quiet.title not in alerts


@pytest.mark.parametrize("settings", [{"velocity_minimum": 3}], indirect=True, ids=["minimum-3"])
def test_a_steady_rate_raises_no_alert(db: Session, rt: Runtime, clock: FrozenClock, new_browser: NewBrowser) -> None:
    steady = factories.open_petition(db, rt, title="Signed at a steady pace")
    hour = clock.now().replace(minute=0, second=0, microsecond=0)
    for back in range(2, 26, 2):
        _add_signatures(db, steady, hour - timedelta(hours=back), 8)  # 96 over the day: 4 an hour
    _add_signatures(db, steady, hour, 6)
    assert integrity.velocity_alerts(db=db, rt=rt, now=clock.now()) == []
    page = flat(as_user(new_browser, db, factories.moderator(db)).get("/moderation"))
    assert "Unusual signing activity" not in page
    clock.advance(timedelta(hours=3))  # the burst hour has moved out of the window
    _add_signatures(db, steady, clock.now().replace(minute=0, second=0, microsecond=0), 30)
    assert [alert.petition.id for alert in integrity.velocity_alerts(db=db, rt=rt, now=clock.now())] == [steady.id]


# -- recount --------------------------------------------------------------------------------------------------


def test_recount_reports_drift_and_repairs_it_only_when_asked(
    db: Session, rt: Runtime, signed_petition: SignedPetition
) -> None:
    petition, _people = signed_petition
    untouched = factories.open_petition(db, rt, title="Nobody has signed this yet")
    moderator = factories.moderator(db)
    integrity.invalidate(
        db=db, rt=rt, petition=petition, moderator=moderator, entries=["@example.com"], reason=REASON, expected=2
    )
    db.commit()
    assert integrity.recount(db=db, repair=False) == [], "voided signatures are not counted"
    db.execute(text("UPDATE petitions SET signature_count = 11 WHERE id = :id"), {"id": petition.id})
    db.execute(text("UPDATE petitions SET signature_count = 1 WHERE id = :id"), {"id": untouched.id})
    db.commit()

    report = integrity.recount(db=db, repair=False)

    assert report == [
        integrity.Drift(petition_id=petition.id, counted=11, actual=3),
        integrity.Drift(petition_id=untouched.id, counted=1, actual=0),
    ]
    assert signature_count(db, petition) == 11
    assert integrity.recount(db=db, repair=True) == report
    db.commit()
    assert signature_count(db, petition) == 3 and signature_count(db, untouched) == 0
    assert integrity.recount(db=db, repair=False) == []


@pytest.fixture
def cli_database(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated database for the commands (a copy of this process's template: migrating one for each test
    cost a second or more); `undersigned db upgrade` itself is tested on an empty one in tests/test_cli.py."""
    (tmp_path / "var").mkdir()
    url = migrated_sqlite(tmp_path / "var" / "cli.db")
    monkeypatch.setenv("UNDERSIGNED_DATABASE_URL", url)
    monkeypatch.setenv("UNDERSIGNED_ENVIRONMENT", "test")
    return url


def _counter(url: str, petition_id: int) -> int:
    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text("SELECT signature_count FROM petitions WHERE id = :id"), {"id": petition_id}
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_tally_recount_reports_with_dry_run_and_repairs_without(cli_database: str) -> None:
    settings = Settings()
    rt = build_runtime(
        settings, clock=FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC)), templates=build_templates(settings).env
    )
    engine = build_engine(cli_database)
    try:
        with build_sessionmaker(engine)() as db:
            petition = factories.open_petition(db, rt)
            for _ in range(2):
                sign(db, rt, petition, factories.worker(db))
            petition_id = petition.id
            db.execute(text("UPDATE petitions SET signature_count = 7 WHERE id = :id"), {"id": petition_id})
            db.commit()
    finally:
        engine.dispose()
    runner = CliRunner()

    dry = runner.invoke(cli, ["tally", "recount", "--dry-run"])

    assert dry.exit_code == 0, dry.output
    assert f"petition {petition_id}: counter 7, signatures 2 (would repair)" in dry.output
    assert "1 petition would repair." in dry.output
    assert _counter(cli_database, petition_id) == 7

    repaired = runner.invoke(cli, ["tally", "recount"])

    assert repaired.exit_code == 0, repaired.output
    assert f"petition {petition_id}: counter 7, signatures 2 (repaired)" in repaired.output
    assert "1 petition repaired." in repaired.output
    assert _counter(cli_database, petition_id) == 2
    clean = runner.invoke(cli, ["tally", "recount", "--dry-run"])
    assert clean.exit_code == 0 and "Every counter matches its signatures." in clean.output


def test_tally_recount_on_a_clean_database(cli_database: str) -> None:
    result = CliRunner().invoke(cli, ["tally", "recount"])
    assert result.exit_code == 0 and "Every counter matches its signatures." in result.output


# -- thresholds -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings", [{"response_threshold": 2, "escalation_threshold": 4}], indirect=True, ids=["thresholds-2-4"]
)
def test_each_threshold_fires_once_as_signatures_keep_arriving(
    db: Session, rt: Runtime, clock: FrozenClock, new_browser: NewBrowser
) -> None:
    creator = make_user(db, email="organizer@example.org", name="Olga Organizer")
    responder = make_user(db, email="responder@example.org", name="Rita Responder", roles=(Role.responder,))
    petition = factories.open_petition(db, rt, creator)
    assert (petition.response_threshold, petition.escalation_threshold) == (2, 4)
    crossed_at = clock.now()

    def sign_through_the_api() -> Browser:
        browser = as_user(new_browser, db, factories.worker(db))
        assert (
            browser.api("POST", f"/api/v1/petitions/{petition.id}/signature", {"visibility": "organizers"}).status_code
            == 201
        )
        return browser

    def reached() -> tuple[datetime | None, datetime | None]:
        db.expire_all()
        current = db.get_one(Petition, petition.id)
        return current.response_threshold_reached_at, current.escalation_threshold_reached_at

    def mails(to: str, template: str) -> int:
        return sum(1 for message in outbox(db, to) if message.template == template)

    sign_through_the_api()
    assert reached() == (None, None) and mails(responder.email, "response_due") == 0

    second = sign_through_the_api()

    assert reached() == (crossed_at, None)
    assert db.get_one(Petition, petition.id).response_due_at == crossed_at + timedelta(days=rt.settings.response_days)
    [due] = [m for m in outbox(db, responder.email) if m.template == "response_due"]
    assert due.subject.startswith("A petition awaits your response by")
    [organizers] = [m for m in outbox(db, creator.email) if m.template == "threshold_reached"]
    assert organizers.subject == "Your petition reached 2 signatures"

    clock.advance(timedelta(hours=2))
    assert second.api("DELETE", f"/api/v1/petitions/{petition.id}/signature").status_code == 204
    sign_through_the_api()  # back up to 2: crossing again fires nothing
    sign_through_the_api()
    sign_through_the_api()  # 4: the escalation threshold
    sign_through_the_api()

    assert signature_count(db, petition) == 5
    assert reached() == (crossed_at, crossed_at + timedelta(hours=2))
    assert mails(responder.email, "response_due") == 1 and mails(creator.email, "threshold_reached") == 1
    assert mails(responder.email, "escalation_reached") == 1
    assert mails(creator.email, "response_due") == 0 and mails(responder.email, "threshold_reached") == 0
    kinds = list(db.scalars(select(PetitionEvent.kind).where(PetitionEvent.petition_id == petition.id)))
    assert kinds.count("response_threshold_reached") == 1 and kinds.count("response_due") == 1
    assert kinds.count("escalation_threshold_reached") == 1
