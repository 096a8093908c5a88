"""One encoding for binary values in the JSON APIs (issue #20): base64url without padding, in the anonymous-signing
API and the signature log's alike, said in the OpenAPI schema field by field; padding accepted on input, as the
decoder's comment promised (submit refused it). C2SP text (checkpoints, verifier keys) keeps standard base64."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.anonymous.linking import link_sessions
from app.core import b64url, merkle
from app.core.runtime import Runtime
from app.log import service as signature_log
from tests import factories
from tests.conftest import Browser, sign_in_as
from tests.test_anonymous import anonymous_client, open_anonymous, wallet  # noqa: F401 (fixture)

pytestmark = pytest.mark.one_database

NewBrowser = Callable[[], Browser]
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]*$")
BINARY = {
    "root",
    "entry",
    "proof",
    "spki",
    "message",
    "signature",
    "blind_signature",
    "blinded_message",
    "wallet_check",
    "check",
}


def test_submit_takes_padding_as_its_decoder_promises(
    new_browser: NewBrowser, db: Session, rt: Runtime, sessions: sessionmaker[Session], anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    tokens, _ = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    message, signature = tokens[petition.id]
    padded: dict[str, Any] = {
        "petition_id": petition.id,
        "message": base64.urlsafe_b64encode(message).decode(),
        "signature": base64.urlsafe_b64encode(signature).decode(),
    }
    assert padded["message"].endswith("=") or len(message) % 3 == 0
    anonymous_client.cookies.clear()
    accepted = anonymous_client.post("/api/v1/anonymous/signatures", json=padded)
    assert accepted.status_code == 202, accepted.text
    signature_log.flush(sessions=sessions, rt=rt)
    # Published as the log writes it: unpadded, whatever the wallet sent.
    ledger = anonymous_client.get(f"/api/v1/petitions/{petition.id}/anonymous-signatures").json()
    assert [item["message"] for item in ledger["entries"]] == [b64url.encode(message)]
    # Anything else is a plain 422 naming the field, never a 500.
    refused = anonymous_client.post("/api/v1/anonymous/signatures", json={**padded, "message": "+/" * 30})
    assert refused.status_code == 422 and "message" in refused.text


def test_the_log_api_speaks_base64url_and_c2sp_text_keeps_standard_base64(
    db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    petition = open_anonymous(db, rt)
    base = f"/api/v1/petitions/{petition.id}/log"
    head = anonymous_client.get(base).json()
    entry = anonymous_client.get(f"{base}/entries?start=0&limit=1").json()["entries"][0]["entry"]
    for value in (head["root"], head["issuing_key"]["spki"], entry):
        assert URL_SAFE.match(value), value
    raw = b64url.decode(entry)
    assert b64url.decode(head["root"]) == merkle.root_of([merkle.leaf_hash(raw)])
    # The checkpoint is C2SP text: its root line is the same hash in standard base64.
    assert head["checkpoint"].split("\n")[2] == base64.b64encode(b64url.decode(head["root"])).decode()
    # The same key in both APIs is spelled the same.
    listed = anonymous_client.get("/api/v1/anonymous/keys").json()
    assert head["issuing_key"]["spki"] in {key["spki"] for key in listed}


def test_the_openapi_schema_says_every_binary_fields_encoding(anonymous_client: TestClient) -> None:
    schemas = anonymous_client.get("/openapi.json").json()["components"]["schemas"]
    # By class name: OpenAPI prefixes a class's module (app__log__schemas__EntryRead) only while another module
    # has a class of that name, and every schema of a name is checked.
    said: dict[str, list[str]] = {}
    for name, schema in schemas.items():
        for field, spec in (schema.get("properties") or {}).items():
            if field in BINARY:
                said.setdefault(f"{name.rsplit('__', 1)[-1]}.{field}", []).append(spec.get("description", ""))
    expected = {
        "LogRead.root",
        "EntryRead.entry",
        "InclusionRead.proof",
        "ConsistencyRead.proof",
        "KeyRead.spki",
        "BallotKeyRead.spki",
        "BallotSignerKeyRead.spki",
        "IssuedRead.spki",
        "IssuedRead.blind_signature",
        "AnonymousLedger.spki",
        "EntryRead.message",
        "TokenRead.message",
        "BlindedRequest.blinded_message",
        "WalletCheckCreate.check",
        "WalletCheckRead.wallet_check",
    }
    assert expected <= set(said), sorted(set(expected) - set(said))
    undocumented = {
        name: text for name, texts in said.items() if name in expected for text in texts if "base64url" not in text
    }
    assert not undocumented, undocumented


# One pattern and one decoder for every base64url field a client sends (app/core/b64url.py): anonymous comments and
# device linking refused padding the anonymous-signing API accepts.

GARBAGE = {
    "!" * 86: "not in the alphabet",
    "+/" * 43: "standard base64's alphabet",
    "=" * 86: "padding alone",
    "A" * 85 + "=": "padding where none can be",
}


PLAIN = {"Some of what was sent is missing or not valid.", "Please correct the highlighted fields."}
FIELD_WORDS = {"This is not in the expected format.", "Not base64url."}


def padded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def test_an_anonymous_comment_takes_padding_and_refuses_garbage_in_plain_words(
    new_browser: NewBrowser, db: Session, rt: Runtime, anonymous_client: TestClient
) -> None:
    from tests.test_anonymous_comments import credential_of

    petition = factories.open_petition(db, rt, allow_anonymous=True)
    message, signature = credential_of(new_browser, db, petition)
    body: dict[str, Any] = {
        "petition_id": petition.id,
        "message": padded(message),
        "signature": padded(signature),
        "body": "The rota changes should be agreed with the people on it.",
    }
    assert body["message"].endswith("=") and body["signature"].endswith("="), "pick lengths that pad"
    for text, what in GARBAGE.items():
        for field in ("message", "signature"):
            anonymous_client.cookies.clear()
            refused = anonymous_client.post("/api/v1/anonymous/comments", json={**body, field: text})
            assert refused.status_code == 422, (what, refused.text)
            words = refused.json()["error"]
            assert words["message"] in PLAIN, (what, words)
            assert set(words["fields"]) == {field}, (what, words)
            assert words["fields"][field] in FIELD_WORDS and "Traceback" not in refused.text, (what, words)
    anonymous_client.cookies.clear()
    accepted = anonymous_client.post("/api/v1/anonymous/comments", json=body)
    assert accepted.status_code == 202, accepted.text
    # The same credential unpadded is the same author: padding cannot pass one colleague off as two.
    anonymous_client.cookies.clear()
    again = anonymous_client.post(
        "/api/v1/anonymous/comments",
        json={**body, "message": b64url.encode(message), "signature": b64url.encode(signature)},
    )
    assert again.status_code == 202 and again.json()["pseudonym"] == accepted.json()["pseudonym"], again.text


def test_linking_a_device_takes_padding_and_refuses_garbage_in_plain_words(
    new_browser: NewBrowser, db: Session, rt: Runtime
) -> None:
    from app.clients import linking as protocol

    link_sessions(rt).clear()  # test apps are shared and account ids repeat across rolled-back tests
    device = sign_in_as(new_browser(), db, factories.worker(db))
    offer = protocol.Offer()
    sent = {name: padded(b64url.decode(value)) for name, value in offer.body().items()}
    assert all(value.endswith("=") for value in sent.values()), sent
    for text, what in {
        "!" * 87: "not in the alphabet",
        "+/" * 43 + "A": "standard base64's alphabet",
        "=" * 87: "padding alone",
        "A" * 85 + "=A": "padding inside",
        "A" * 85 + "==": "padding where none can be",
    }.items():
        refused = device.api("POST", "/api/v1/wallet/link", {**sent, "offer_key": text})
        assert refused.status_code == 422, (what, refused.text)
        words = refused.json()["error"]
        assert words["message"] in PLAIN and set(words["fields"]) == {"offer_key"}, (what, words)
        assert words["fields"]["offer_key"] in FIELD_WORDS, (what, words)
        assert "Traceback" not in refused.text
    assert device.api("GET", "/api/v1/wallet/link").status_code == 404  # nothing opened
    opened = device.api("POST", "/api/v1/wallet/link", sent)
    assert opened.status_code == 201, opened.text
    # Relayed to the other device as the API writes every binary value: unpadded, the same bytes.
    session = device.api("GET", "/api/v1/wallet/link").json()
    assert session["offer_key"] == offer.body()["offer_key"] == b64url.encode(offer.raw)
    assert device.api("DELETE", "/api/v1/wallet/link").status_code == 204
