"""The anonymous-signing API's live figures under the log (issue #20): `undersigned verify` holds the token list,
its counts, the anonymity set and the cookie-less key list to what the log adds up to.

A dishonest operator changes what one endpoint answers (its code, not the database every endpoint reads), as
each test does here by replacing the function behind it; before, `verify` never read these endpoints."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.anonymous import anonymity
from app.anonymous import api as anonymous_api
from app.anonymous import service as anonymous_service
from app.core import b64url
from app.core.runtime import Runtime
from app.log import service as log_service
from tests.conftest import Browser
from tests.test_log_counts import outside, reader, sessions, signed_petition, verify  # noqa: F401 (fixtures)

NewBrowser = Callable[[], Browser]


def test_an_honest_anonymous_api_passes(new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside,  # type: ignore[no-untyped-def]
                                        tmp_path: Path) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output


def test_an_inflated_anonymity_set_fails(new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside,  # type: ignore[no-untyped-def]
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    honest = anonymity.for_petition
    # "You would be hidden among 41 colleagues": a signer who believes it signs where only one could have.
    monkeypatch.setattr(anonymity, "for_petition", lambda **kwargs: dataclasses.replace(
        honest(**kwargs), signing=honest(**kwargs).signing + 40))
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert ("the anonymity API says an anonymous signer hides among 41 colleagues, but 1 tokens issued - 0 spent "
            "by name - 0 forfeited is 1") in result.output


def test_a_token_list_that_drops_or_adds_tokens_fails(new_browser: NewBrowser, db: Session, rt: Runtime, sessions,  # type: ignore[no-untyped-def]
                                                      outside, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    honest = anonymous_service.published
    monkeypatch.setattr(anonymous_service, "published", lambda **kwargs: [])
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "the anonymous signatures API lists 0 tokens but says it holds 1" in result.output
    assert "1 anonymous signature in the log is not in the anonymous signatures API's list" in result.output

    # A token listed (and counted) that the log does not hold, with nothing waiting for the next batch.
    def padded(**kwargs):  # type: ignore[no-untyped-def]
        rows = honest(**kwargs)
        forged = dataclasses.make_dataclass("Row", ["id", "token_message", "token_signature"])(
            "f" * 32, b"\x01" * 32, b"\x02" * 256)
        return rows + [forged] if not kwargs.get("after") else rows

    monkeypatch.setattr(anonymous_service, "published", padded)
    monkeypatch.setattr(anonymous_service, "anonymous_count", lambda **kwargs: 2)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "lists 1 tokens the log does not hold, but only 0 wait for the next batch" in result.output


def test_a_key_list_behind_the_log_fails(new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside,  # type: ignore[no-untyped-def]
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    honest = anonymous_api._key

    def tailored(key, purpose=anonymous_api.wallet.Purpose.sign):  # type: ignore[no-untyped-def]
        published = honest(key, purpose)
        return {**published, "tokens_issued": 0, "key_id": "00" * 32} if purpose.value == "sign" else published

    monkeypatch.setattr(anonymous_api, "_key", tailored)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "the published key list names another signing key than the one entry 0 commits to" in result.output
    assert "the anonymous key list shows 0 for tokens issued, less than the 1 the log has committed" in result.output


def test_a_discussion_key_other_than_entry_0s_fails(new_browser: NewBrowser, db: Session, rt: Runtime, sessions,  # type: ignore[no-untyped-def]
                                                    outside, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cookie-less key list is what wallets hold an account's discussion key to; a server publishing another
    one than entry 0 committed could hand one account a key of its own and recognise its anonymous comments."""
    petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    entry = outside.get(f"/api/v1/petitions/{petition_id}/log/entries?start=0&limit=1").json()["entries"][0]
    assert json.loads(b64url.decode(entry["entry"]))["discussion_key_id"]
    honest = anonymous_api._key

    def tailored(key, purpose=anonymous_api.wallet.Purpose.sign):  # type: ignore[no-untyped-def]
        published = honest(key, purpose)
        return {**published, "key_id": "00" * 32} if purpose.value == "discuss" else published

    monkeypatch.setattr(anonymous_api, "_key", tailored)
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "the published key list names another discussion key than the one entry 0 commits to" in result.output
    assert "signing key" not in result.output


def test_a_log_opened_before_entry_0_named_the_discussion_key_still_verifies(  # type: ignore[no-untyped-def]
        new_browser: NewBrowser, db: Session, rt: Runtime, sessions, outside, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Such a log commits no discussion key, so the list's is held to nothing here (the wallets hold it to the
    key they accepted first); its signing key still is."""
    honest_encode = log_service.encode

    def before(entry):  # type: ignore[no-untyped-def]
        return honest_encode({name: value for name, value in entry.items() if name != "discussion_key_id"})

    with monkeypatch.context() as opened_before:
        opened_before.setattr(log_service, "encode", before)
        petition_id = signed_petition(db, rt, new_browser, sessions, outside)
    entry = outside.get(f"/api/v1/petitions/{petition_id}/log/entries?start=0&limit=1").json()["entries"][0]
    assert "discussion_key_id" not in json.loads(b64url.decode(entry["entry"]))
    published = outside.get("/api/v1/anonymous/keys").json()
    assert {key["purpose"] for key in published if key["petition_id"] == petition_id} == {"sign", "discuss"}
    result = verify(petition_id, tmp_path / "state.json")
    assert result.exit_code == 0, result.output
