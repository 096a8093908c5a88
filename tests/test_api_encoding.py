"""One encoding for binary values in the JSON APIs (issue #20): base64url without padding, in the anonymous-signing
API and the signature log's alike, said in the OpenAPI schema field by field; padding accepted on input, as the
decoder's comment promised (submit refused it). C2SP text (checkpoints, verifier keys) keeps standard base64."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.core import b64url, merkle
from app.core.runtime import Runtime
from app.log import service as signature_log
from tests import factories
from tests.conftest import Browser, sign_in_as
from tests.test_anonymous import anonymous_client, open_anonymous, wallet  # noqa: F401 (fixture)
from tests.test_log_counts import sessions  # noqa: F401 (fixture)

NewBrowser = Callable[[], Browser]
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]*$")
BINARY = {"root", "entry", "proof", "spki", "message", "signature", "blind_signature", "blinded_message",
          "wallet_check", "check"}


def test_submit_takes_padding_as_its_decoder_promises(new_browser: NewBrowser, db: Session, rt: Runtime,
                                                      sessions: sessionmaker[Session],
                                                      anonymous_client: TestClient) -> None:
    petition = open_anonymous(db, rt)
    tokens, _ = wallet(sign_in_as(new_browser(), db, factories.worker(db)))
    message, signature = tokens[petition.id]
    padded = {"petition_id": petition.id, "message": base64.urlsafe_b64encode(message).decode(),
              "signature": base64.urlsafe_b64encode(signature).decode()}
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


def test_the_log_api_speaks_base64url_and_c2sp_text_keeps_standard_base64(db: Session, rt: Runtime,
                                                                        anonymous_client: TestClient) -> None:
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
    said = {}
    for name, schema in schemas.items():
        for field, spec in (schema.get("properties") or {}).items():
            if field in BINARY:
                said[f"{name}.{field}"] = spec.get("description", "")
    expected = {"LogRead.root", "app__log__api__EntryRead.entry", "InclusionRead.proof", "ConsistencyRead.proof",
                "KeyRead.spki", "IssuedRead.spki", "IssuedRead.blind_signature", "AnonymousLedger.spki",
                "app__anonymous__schemas__EntryRead.message", "TokenRead.message", "BlindedRequest.blinded_message",
                "WalletCheckCreate.check", "WalletCheckRead.wallet_check"}
    assert expected <= set(said), sorted(set(expected) - set(said))
    undocumented = {name: text for name, text in said.items() if name in expected and "base64url" not in text}
    assert not undocumented, undocumented
