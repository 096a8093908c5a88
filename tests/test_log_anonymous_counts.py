"""The anonymous-signing API's live figures under the log (issue #20): `undersigned verify` holds the token list,
its counts, the anonymity set and the cookie-less key list to what the log adds up to.

A dishonest operator changes what one endpoint answers (its code, not the database every endpoint reads), as
each test does here by replacing the function behind it; before, `verify` never read these endpoints."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.anonymous import anonymity
from app.anonymous import service as anonymous_service
from app.anonymous.schemas import KeyRead
from app.anonymous.wallet import Purpose
from app.clients import log as log_client
from app.core import b64url
from app.core.runtime import Runtime
from app.core.versions import page_changed
from app.log import service as log_service
from app.log import service as signature_log
from app.models.anonymous import IssuingKey
from tests import factories
from tests.conftest import Browser, sign_in_as
from tests.test_anonymous import wallet
from tests.test_log_counts import outside, reader, signed_petition, verify  # noqa: F401 (fixtures)

NewBrowser = Callable[[], Browser]


def test_an_honest_anonymous_api_passes(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output


def test_an_inflated_anonymity_set_fails(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    honest = anonymity.for_petition

    def inflated(**kwargs):
        figures = honest(**kwargs)
        assert figures.signing is not None
        return dataclasses.replace(figures, signing=figures.signing + 40)

    # "You would be hidden among 41 colleagues": a signer who believes it signs where only one could have.
    monkeypatch.setattr(anonymity, "for_petition", inflated)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert (
        "the anonymity API says an anonymous signer hides among 41 colleagues, but 1 tokens issued - 0 spent "
        "by name - 0 forfeited is 1"
    ) in result.output


def test_a_token_list_that_drops_or_adds_tokens_fails(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    honest = anonymous_service.published
    monkeypatch.setattr(anonymous_service, "published", lambda **kwargs: [])
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "the anonymous signatures API lists 0 tokens but says it holds 1" in result.output
    assert "1 anonymous signature in the log is not in the anonymous signatures API's list" in result.output

    # A token listed (and counted) that the log does not hold, with nothing waiting for the next batch.
    def padded(**kwargs):
        rows = honest(**kwargs)
        forged = dataclasses.make_dataclass("Row", ["id", "token_message", "token_signature"])(
            "f" * 32, b"\x01" * 32, b"\x02" * 256
        )
        return rows + [forged] if not kwargs.get("after") else rows

    monkeypatch.setattr(anonymous_service, "published", padded)
    monkeypatch.setattr(anonymous_service, "anonymous_count", lambda **kwargs: 2)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "lists 1 tokens the log does not hold, but only 0 wait for the next batch" in result.output


def test_a_key_list_behind_the_log_fails(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    honest = KeyRead.of

    def tailored(key, purpose=Purpose.sign, issued=None):
        published = honest(key, purpose, issued)
        return (
            published.model_copy(update={"tokens_issued": 0, "key_id": "00" * 32}) if purpose == "sign" else published
        )

    monkeypatch.setattr(KeyRead, "of", tailored)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "the published key list names another signing key than the one entry 0 commits to" in result.output
    assert "the anonymous key list says 0 tokens were issued; the log commits 1" in result.output


def test_a_discussion_key_other_than_entry_0s_fails(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cookie-less key list is what wallets hold an account's discussion key to; a server publishing another
    one than entry 0 committed could hand one account a key of its own and recognise its anonymous comments."""
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    entry = outside.get(f"/api/v1/petitions/{petition_id}/log/entries?start=0&limit=1").json()["entries"][0]
    assert json.loads(b64url.decode(entry["entry"]))["discussion_key_id"]
    honest = KeyRead.of

    def tailored(key, purpose=Purpose.sign, issued=None):
        published = honest(key, purpose, issued)
        return published.model_copy(update={"key_id": "00" * 32}) if purpose == "discuss" else published

    monkeypatch.setattr(KeyRead, "of", tailored)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "the published key list names another discussion key than the one entry 0 commits to" in result.output
    assert "signing key" not in result.output


def test_a_log_opened_before_entry_0_named_the_discussion_key_still_verifies(
    new_browser: NewBrowser,
    db: Session,
    rt: Runtime,
    sessions,
    outside,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Such a log commits no discussion key, so the list's is held to nothing here (the wallets hold it to the
    key they accepted first); its signing key still is."""
    honest_encode = log_service.encode

    def before(entry):
        return honest_encode({name: value for name, value in entry.items() if name != "discussion_key_id"})

    with monkeypatch.context() as opened_before:
        opened_before.setattr(log_service, "encode", before)
        petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    entry = outside.get(f"/api/v1/petitions/{petition_id}/log/entries?start=0&limit=1").json()["entries"][0]
    assert "discussion_key_id" not in json.loads(b64url.decode(entry["entry"]))
    published = outside.get("/api/v1/anonymous/keys").json()
    # (and its signer key, issue #25, which `verify` does not check)
    assert {key["purpose"] for key in published if key["petition_id"] == petition_id} == {"sign", "discuss", "signer"}
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output


def _tokens_issued(outside, petition_id: int) -> dict[str, object]:
    """The signing key's tokens issued (and the anonymity set) as each place publishes them."""
    page = outside.get(f"/petitions/{petition_id}").text
    keys = [
        key
        for key in outside.get("/api/v1/anonymous/keys").json()
        if key["petition_id"] == petition_id and key["purpose"] == "sign"
    ]
    return {
        "page": log_client.page_figures(page)["tokens_issued"],
        "page's set": int(re.search(r'data-anonymity-set="(\d+)"', page).group(1)),  # type: ignore[union-attr]
        "log head": outside.get(f"/api/v1/petitions/{petition_id}/log").json()["issuing_key"]["tokens_issued"],
        "ledger": outside.get(f"/api/v1/petitions/{petition_id}/anonymous-signatures").json()["tokens_issued"],
        "key list": keys[0]["tokens_issued"],
        "anonymity": outside.get(f"/api/v1/petitions/{petition_id}/anonymity").json()["signing"],
    }


def test_tokens_issued_raised_in_the_database_are_not_published(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    """Review F8: the operator raises the key's count of tokens issued by 40 so that a worker is told they hide
    among 41. What is published is what the log commits, so every place still says 1."""
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    db.execute(
        text("UPDATE issuing_keys SET tokens_issued = tokens_issued + 40 WHERE petition_id = :p"), {"p": petition_id}
    )
    db.commit()
    assert set(_tokens_issued(outside, petition_id).values()) == {1}
    assert "hidden among 1 colleague who collected" in outside.get(f"/petitions/{petition_id}").text
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output


def test_tokens_issued_raised_where_the_figures_are_read_fail_verify(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    """The same operator, knowing the figures are the log head's, raises those too: every place now says 41
    (and no batch will append an issuance entry, the head and the key agreeing), and `verify` fails on each."""
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    for table in ("issuing_keys", "log_heads"):
        db.execute(
            text(f"UPDATE {table} SET tokens_issued = tokens_issued + 40 WHERE petition_id = :p"), {"p": petition_id}
        )
    page_changed(db, petition_id)  # the operator runs the software too: its pages show the lie at once
    db.commit()
    assert set(_tokens_issued(outside, petition_id).values()) == {41}
    signature_log.flush(sessions=sessions, rt=rt)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    for place in (
        "the petition page",
        "the log API's issuing key",
        "the anonymous signatures API",
        "the anonymous key list",
    ):
        assert f"{place} says 41 tokens were issued; the log commits 1" in result.output, result.output

    # Tokens spent by name the same way: the set would shrink, but a figure the log does not commit fails alike.
    for table in ("issuing_keys", "log_heads"):
        db.execute(
            text(
                f"UPDATE {table} SET tokens_issued = tokens_issued - 40, spent_by_name = spent_by_name + 3 "
                "WHERE petition_id = :p"
            ),
            {"p": petition_id},
        )
    page_changed(db, petition_id)
    db.commit()
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "the petition page says 3 tokens were spent by name; the log commits 0" in result.output, result.output


def test_tokens_issued_between_batches_are_published_with_the_next(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path
) -> None:
    """The honest flow: a colleague collects a token after the last batch. Until the next batch commits it, every
    place shows the committed 1 (the smaller set, the cautious side) and `verify` passes; then 2, and it passes."""
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    tokens, _ = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    assert petition_id in tokens
    assert db.get_one(IssuingKey, petition_id).tokens_issued == 2
    assert set(_tokens_issued(outside, petition_id).values()) == {1}
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output

    assert signature_log.flush(sessions=sessions, rt=rt) == 1  # the issuance entry alone
    assert set(_tokens_issued(outside, petition_id).values()) == {2}
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output
