"""Reports and exports: numbers equal the database's, small groups stay hidden, every export is audited."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.clock import FrozenClock
from app.core.runtime import Runtime
from app.models.accounts import Role, User
from app.models.audit import AuditEntry
from app.models.petitions import Petition
from app.models.signatures import GroupKind, Signature, SignerGroup
from app.signatures import integrity
from app.signatures import service as signatures
from tests import factories
from tests.conftest import Browser, count_rows, sign_in_as

NewBrowser = Callable[[], Browser]

# Signers by department: Support 7, Legal 2 and 3 who gave none (both below 5: hidden, and together they make
# 5, so no third cell needs hiding), Finance 6, nobody from Sales. Locations: Berlin 9, Lisbon 9.
PLAN = (
    [("Support", "Berlin")] * 7
    + [("Legal", "Lisbon")] * 2
    + [("Finance", "Lisbon")] * 6
    + [(None, "Berlin"), (None, "Berlin"), (None, "Lisbon")]
)


@pytest.fixture
def arranged(db: Session, rt: Runtime, clock: FrozenClock) -> dict[str, Any]:
    groups = {}
    for kind, names in (
        (GroupKind.department, ("Support", "Legal", "Finance", "Sales")),
        (GroupKind.location, ("Berlin", "Lisbon")),
    ):
        for name in names:
            group = SignerGroup(kind=kind, name=name, active=True)
            db.add(group)
            groups[name] = group
    db.commit()
    organizer = factories.worker(db, name="Olga Organizer")
    petition = factories.open_petition(db, rt, creator=organizer, collect_attributes=True)
    signers: list[tuple[User, str]] = []
    for index, (department, location) in enumerate(PLAN):
        if index == 9:
            clock.advance(timedelta(days=1))  # two days of signatures
        user = factories.worker(db, name=f"Signer {index} Zoë")
        visibility = "public" if index % 3 == 0 else "organizers"
        signatures.sign(
            db=db,
            rt=rt,
            petition_id=petition.id,
            user=user,
            visibility=visibility,
            notify_updates=False,
            department=str(groups[department].id) if department else None,
            location=str(groups[location].id),
        )
        signers.append((user, visibility))
    # One signature withdrawn, one voided: neither is counted, and neither appears in a list of names.
    withdrawn_user = factories.worker(db, name="Wendy Withdrawn")
    signatures.sign(
        db=db, rt=rt, petition_id=petition.id, user=withdrawn_user, visibility="public", notify_updates=False
    )
    db.refresh(petition)
    signatures.withdraw(db=db, petition=petition, user=withdrawn_user)
    voided_user = factories.worker(db, name="Victor Voided")
    signatures.sign(db=db, rt=rt, petition_id=petition.id, user=voided_user, visibility="public", notify_updates=False)
    integrity.invalidate(
        db=db,
        rt=rt,
        petition=petition,
        moderator=factories.moderator(db),
        # A rule covers at least five accounts (issue #21): four who did not sign pad it.
        entries=[voided_user.email, *(factories.worker(db).email for _ in range(4))],
        reason="A compromised account.",
        expected=1,
    )
    db.commit()
    db.refresh(petition)
    return {"petition": petition, "organizer": organizer, "signers": signers}


def database_counts(db: Session, petition: Petition) -> dict[str, Any]:
    counted = (Signature.petition_id == petition.id, Signature.invalidation_id.is_(None))
    by_visibility = dict(
        db.execute(select(Signature.visibility, func.count()).where(*counted).group_by(Signature.visibility)).all()
    )
    by_day: Counter[str] = Counter()
    for hour, count in db.execute(
        select(Signature.signed_hour, func.count()).where(*counted).group_by(Signature.signed_hour)
    ):
        by_day[hour.date().isoformat()] += count
    return {"total": sum(by_visibility.values()), "by_visibility": by_visibility, "by_day": dict(by_day)}


def organizer_browser(new_browser: NewBrowser, db: Session, arranged: dict[str, Any]) -> Browser:
    return sign_in_as(new_browser(), db, arranged["organizer"])


def export(browser: Browser, petition: Petition, kind: str, fmt: str) -> Any:
    return browser.api("POST", f"/api/v1/petitions/{petition.id}/exports", {"kind": kind, "format": fmt})


# -- the tally ------------------------------------------------------------------------------------------------


def test_tally_json_and_csv_equal_the_database(db, arranged, new_browser) -> None:
    petition = arranged["petition"]
    expected = database_counts(db, petition)
    assert expected["total"] == len(PLAN) == petition.signature_count
    browser = organizer_browser(new_browser, db, arranged)

    response = export(browser, petition, "tally", "json")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == f'attachment; filename="petition-{petition.id}-tally.json"'
    data = response.json()
    assert data["signature_count"] == expected["total"]
    assert {k: v for k, v in data["by_visibility"].items() if v} == expected["by_visibility"]
    assert {row["day"]: row["signatures"] for row in data["by_day"]} == expected["by_day"]
    assert data["withdrawal_count"] == 1 and data["voided_count"] == 1
    assert sum(row["signatures"] for row in data["by_hour"]) == expected["total"]

    rows = list(csv.DictReader(io.StringIO(export(browser, petition, "tally", "csv").text)))
    value = {(row["section"], row["label"]): row["value"] for row in rows}
    assert value[("tally", "signatures")] == str(expected["total"])
    for visibility, count in expected["by_visibility"].items():
        assert value[("tally", f"visibility: {visibility}")] == str(count)
    assert {label: int(count) for (section, label), count in value.items() if section == "by day"} == expected["by_day"]


def test_breakdowns_hide_small_groups_and_the_cell_that_would_reveal_them(db, arranged, new_browser) -> None:
    browser = organizer_browser(new_browser, db, arranged)
    data = export(browser, arranged["petition"], "tally", "json").json()
    departments = {cell["label"]: cell["signatures"] for cell in data["departments"]["cells"]}
    assert departments == {"Finance": 6, "Legal": None, "Sales": 0, "Support": 7, "Not given": None}
    assert data["departments"]["total"] == len(PLAN)
    locations = {cell["label"]: cell["signatures"] for cell in data["locations"]["cells"]}
    assert locations == {"Berlin": 9, "Lisbon": 9, "Not given": 0}
    # The published numbers leave at least the smallest group's size unaccounted for, spread over 2+ cells.
    hidden = data["departments"]["total"] - sum(count for count in departments.values() if count is not None)
    assert hidden >= data["min_group_size"] and list(departments.values()).count(None) >= 2

    rows = list(csv.DictReader(io.StringIO(export(browser, arranged["petition"], "tally", "csv").text)))
    legal = next(row for row in rows if row["section"] == "by department" and row["label"] == "Legal")
    assert legal["value"] == "" and "suppressed" in legal["note"]


def test_tally_xlsx_holds_the_same_numbers(db, arranged, new_browser) -> None:
    petition = arranged["petition"]
    expected = database_counts(db, petition)
    response = export(organizer_browser(new_browser, db, arranged), petition, "tally", "xlsx")
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    summary = {row[0]: row[1] for row in workbook["Tally"].iter_rows(values_only=True)}
    assert summary["Signatures"] == expected["total"]
    assert summary["Visibility: public"] == expected["by_visibility"]["public"]
    by_day = {day: count for day, count in list(workbook["By day"].iter_rows(values_only=True))[1:]}
    assert by_day == expected["by_day"]
    departments = {label: count for label, count in list(workbook["By department"].iter_rows(values_only=True))[1:]}
    assert departments["Support"] == 7 and str(departments["Legal"]).startswith("suppressed")


def test_tally_pdf_is_the_delivery_report(db, arranged, new_browser) -> None:
    petition = arranged["petition"]
    response = export(organizer_browser(new_browser, db, arranged), petition, "tally", "pdf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert petition.title in " ".join(text.split()) and str(len(PLAN)) in text
    assert "Chief People Officer" in text


def test_public_tally_is_aggregate_only_and_needs_no_account(db, rt, arranged, browser) -> None:
    petition = arranged["petition"]
    data = browser.get(f"/api/v1/petitions/{petition.id}/tally").json()
    assert data["signature_count"] == len(PLAN)
    text = json.dumps(data) + browser.get(f"/api/v1/petitions/{petition.id}/tally?format=csv").text
    assert "Zoë" not in text and "Signer" not in text, "no name in the aggregate"
    page = browser.get(f"/petitions/{petition.id}/report")
    assert page.status_code == 200 and "Signatures over time" in page.text and "<svg" in page.text
    assert ">Signatures</text>" in page.text and ">Petitions</text>" not in page.text, "the axis counts signatures"
    assert browser.get(f"/api/v1/petitions/{petition.id}/tally?format=xlsx").status_code == 422

    # While it is open, the public sees no group and no hour: watching those change would tell who signed.
    assert data["departments"] is None and data["locations"] is None and data["by_hour"] == []
    assert data["withheld_while_open"] is True
    assert "Support" not in page.text and "Published when the petition closes" in page.text
    from app.petitions import service as petitions

    petitions.close(db=db, rt=rt, petition=petition, actor=None, reason="The organizers closed it.")
    db.commit()
    closed = browser.get(f"/api/v1/petitions/{petition.id}/tally").json()
    assert {cell["label"]: cell["signatures"] for cell in closed["departments"]["cells"]}["Support"] == 7
    assert closed["by_hour"] == [], "hours stay private"
    page = browser.get(f"/petitions/{petition.id}/report")
    assert "Support" in page.text and "fewer than 5" in page.text


def test_organizers_see_the_groups_while_the_petition_is_open(db, arranged, new_browser) -> None:
    petition = arranged["petition"]
    organizer = organizer_browser(new_browser, db, arranged)
    data = organizer.get(f"/api/v1/petitions/{petition.id}/tally").json()
    assert data["departments"]["total"] == len(PLAN) and data["withheld_while_open"] is False
    page = organizer.get(f"/petitions/{petition.id}/report").text
    assert "Support" in page and "everyone else sees them once it closes" in page


def test_a_draft_has_no_public_report(db, rt, browser) -> None:
    draft = factories.draft_petition(db, rt)
    assert browser.get(f"/api/v1/petitions/{draft.id}/tally").status_code == 404
    assert browser.get(f"/petitions/{draft.id}/report").status_code == 404


# -- signer lists ---------------------------------------------------------------------------------------------


def test_signer_lists_hold_the_shown_names_and_nothing_else(db, arranged, new_browser) -> None:
    petition = arranged["petition"]
    expected = sorted(user.display_name for user, _ in arranged["signers"])
    browser = organizer_browser(new_browser, db, arranged)

    listed_csv = list(csv.DictReader(io.StringIO(export(browser, petition, "signers", "csv").text)))
    assert sorted(row["name"] for row in listed_csv) == expected
    assert {row["visibility"] for row in listed_csv} == {"public", "organizers"}
    support = [row for row in listed_csv if row["department"] == "Support"]
    assert len(support) == 7 and {row["location"] for row in support} == {"Berlin"}

    listed_json = export(browser, petition, "signers", "json").json()
    assert sorted(row["name"] for row in listed_json) == expected

    workbook = openpyxl.load_workbook(io.BytesIO(export(browser, petition, "signers", "xlsx").content), read_only=True)
    rows = list(workbook["Signers"].iter_rows(values_only=True))
    assert rows[0] == ("name", "visibility", "signed_on", "department", "location")
    assert sorted(row[0] for row in rows[1:]) == expected

    pdf = export(browser, petition, "signers", "pdf")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert all(name in text for name in expected)
    for everything in (json.dumps(listed_json), text):
        assert "Wendy Withdrawn" not in everything and "Victor Voided" not in everything


def test_an_empty_petition_exports_empty_lists(db, rt, new_browser) -> None:
    organizer = factories.worker(db)
    petition = factories.open_petition(db, rt, creator=organizer)
    browser = sign_in_as(new_browser(), db, organizer)
    assert export(browser, petition, "signers", "json").json() == []
    assert export(browser, petition, "signers", "csv").text.splitlines() == [
        '"name","visibility","signed_on","department","location"'
    ]
    assert export(browser, petition, "tally", "json").json()["departments"] is None


# -- who may export, and the record of it ------------------------------------------------------------------------


def test_only_the_petitions_organizers_export_and_each_export_is_audited(db, arranged, new_browser) -> None:
    petition = arranged["petition"]
    before = count_rows(db, "audit_log")
    worker = sign_in_as(new_browser(), db, factories.worker(db))
    assert export(worker, petition, "signers", "csv").status_code == 403
    assert worker.post(f"/petitions/{petition.id}/export", {"kind": "signers", "format": "csv"}).status_code == 403
    assert export(new_browser(), petition, "signers", "csv").status_code == 401
    assert count_rows(db, "audit_log") == before, "a refused export records nothing"

    organizer = organizer_browser(new_browser, db, arranged)
    assert export(organizer, petition, "signers", "csv").status_code == 200
    page = organizer.post(f"/petitions/{petition.id}/export", {"kind": "tally", "format": "pdf"})
    assert page.status_code == 200 and page.content.startswith(b"%PDF")
    db.expire_all()
    entries = list(
        db.scalars(select(AuditEntry).where(AuditEntry.action == "petition.export").order_by(AuditEntry.seq))
    )
    assert [(json.loads(entry.detail)["kind"], json.loads(entry.detail)["format"]) for entry in entries] == [
        ("signers", "csv"),
        ("tally", "pdf"),
    ]
    assert {entry.actor_name for entry in entries} == {"Olga Organizer"}

    history = organizer.get(f"/api/v1/petitions/{petition.id}/exports").json()
    assert [(record["kind"], record["format"]) for record in history] == [("tally", "pdf"), ("signers", "csv")]
    panel = organizer.get(f"/petitions/{petition.id}/export")
    assert panel.status_code == 200 and "Olga Organizer" in panel.text and "Export history" in panel.text
    assert worker.get(f"/petitions/{petition.id}/export").status_code == 403


@pytest.mark.parametrize("body", [{"kind": "names", "format": "csv"}, {"kind": "tally", "format": "docx"}, {}])
def test_bad_export_requests_are_refused_and_record_nothing(db, arranged, new_browser, body) -> None:
    petition = arranged["petition"]
    before = count_rows(db, "audit_log")
    organizer = organizer_browser(new_browser, db, arranged)
    api = organizer.api("POST", f"/api/v1/petitions/{petition.id}/exports", body)
    assert api.status_code == 422 and api.json()["error"]["code"] == "invalid_input"
    page = organizer.post(f"/petitions/{petition.id}/export", {key: str(value) for key, value in body.items()})
    assert page.status_code == 422
    assert count_rows(db, "audit_log") == before
    missing = organizer.api("POST", "/api/v1/petitions/999999/exports", {"kind": "tally", "format": "csv"})
    assert missing.status_code == 404


def test_the_petition_page_links_the_report_and_the_export_panel(db, arranged, new_browser) -> None:
    petition = arranged["petition"]
    organizer = organizer_browser(new_browser, db, arranged)
    page = organizer.get(f"/petitions/{petition.id}").text
    assert f"/petitions/{petition.id}/report" in page and f"/petitions/{petition.id}/export" in page
    other = sign_in_as(new_browser(), db, factories.worker(db)).get(f"/petitions/{petition.id}").text
    assert f"/petitions/{petition.id}/report" in other and f"/petitions/{petition.id}/export" not in other


# -- the organization-wide report ----------------------------------------------------------------------------


def test_organization_report_counts_petitions_by_status_and_signatures_by_month(
    db,
    rt,
    arranged,
    browser,
    new_browser,
) -> None:
    factories.draft_petition(db, rt)
    public = browser.get("/api/v1/reports/organization").json()
    by_state = {row["state"]: row["petitions"] for row in public["by_state"]}
    assert by_state["open"] == 1 and "draft" not in by_state, "the public counts only what everyone can see"
    assert sum(row["signatures"] for row in public["signatures_by_month"]) == len(PLAN)
    board = browser.get("/scoreboard")
    assert "Petitions by status" in board.text and "Signatures per month" in board.text
    rows = list(csv.DictReader(io.StringIO(browser.get("/api/v1/reports/organization?format=csv").text)))
    assert {row["label"]: row["value"] for row in rows if row["section"] == "petitions by status"}[
        "Open for signatures"
    ] == "1"

    admin = sign_in_as(new_browser(), db, factories.worker(db, roles=(Role.admin,)))
    page = admin.get("/admin/report")
    assert page.status_code == 200 and 'data-state="draft"' in page.text
    exported = list(csv.DictReader(io.StringIO(admin.get("/admin/report?format=csv").text)))
    assert {row["label"]: row["value"] for row in exported if row["section"] == "petitions by status"}["Draft"] == "1"
    assert admin.get("/admin/report?format=xml").status_code == 422


def test_streamed_json_and_csv_keep_every_character_of_a_name() -> None:
    from app.reports import exports

    awkward = ['Zoë "Z" O\'Neil', "back\\slash", "tab\there", "李雷", "محمد", "</script><b>", "=1+1", "a,b;c"]
    lines = [(name, "public", "2026-11-24", 'Dépt "R&D"', "") for name in awkward]
    chunks = [lines[:3], [], lines[3:]]
    data = json.loads(b"".join(exports.signers_json(iter(chunks))))
    assert [row["name"] for row in data] == awkward and data[0]["department"] == 'Dépt "R&D"'
    rows = list(csv.DictReader(io.StringIO(b"".join(exports.signers_csv(iter(chunks))).decode())))
    # Every character kept; a name that starts like a spreadsheet formula gets an apostrophe in CSV.
    assert [row["name"] for row in rows] == [("'" if name == "=1+1" else "") + name for name in awkward]
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(exports.signers_xlsx(iter(chunks)))), read_only=True)
    cells = [row[0] for row in list(workbook["Signers"].iter_rows())[1:]]
    assert [cell.value for cell in cells] == awkward
    assert {cell.data_type for cell in cells} == {"s"}, "text, never a formula"
    assert json.loads(b"".join(exports.signers_json(iter([[]])))) == []
