"""One wallet secret derives every credential the same way on every device (app/anonymous/derive.py).

The vector in tests/data/wallet/derive_vector.json is what the browser (assets/src/derive.js) must reproduce
too: tests/test_browser_wallet_devices.py runs it in Chromium."""

import json
from pathlib import Path

import pytest

from app.anonymous import derive
from app.core import blindrsa

VECTOR = json.loads((Path(__file__).parent / "data" / "wallet" / "derive_vector.json").read_text())
PUBLIC = blindrsa.PublicKey(n=int(VECTOR["n"], 16), e=int(VECTOR["e"], 16))
SECRET = bytes.fromhex(VECTOR["secret"])


def test_the_key_is_the_one_named():
    assert PUBLIC.key_id() == VECTOR["key_id"]


@pytest.mark.parametrize("expected", VECTOR["credentials"], ids=lambda item: item["purpose"])
def test_a_credential_derives_to_the_vector_and_finalizes(expected):
    subject = expected.get("subject", VECTOR["petition_id"])
    about = {"ballot_id": subject} if expected["purpose"] == "ballot" else {"petition_id": subject}
    credential = derive.credential(SECRET, purpose=expected["purpose"], key_id=VECTOR["key_id"], public=PUBLIC, **about)
    assert credential.message.hex() == expected["message"]
    assert credential.blinded_msg.hex() == expected["blinded_msg"]
    assert format(credential.inv, "x") == expected["inv"]
    assert credential.finalize(PUBLIC, bytes.fromhex(expected["blind_sig"])).hex() == expected["sig"]


def made(purpose: str = "sign", petition_id: int = VECTOR["petition_id"], key_id: str = VECTOR["key_id"]):
    return derive.credential(SECRET, purpose=purpose, petition_id=petition_id, key_id=key_id, public=PUBLIC)


def test_purposes_and_keys_give_unrelated_credentials():
    sign, discuss, other_key = made(), made("discuss"), made(key_id="0" * 64)
    assert len({sign.message, discuss.message, other_key.message}) == 3
    assert len({sign.blinded_msg, discuss.blinded_msg, other_key.blinded_msg}) == 3


def test_one_key_published_for_two_petitions_still_gives_two_unrelated_credentials():
    """A server that publishes one key for two petitions (or reuses a closed petition's key) must not receive the
    same blinded request twice, nor see the same token or pseudonym on both: that would tie a worker's anonymous
    actions on the two petitions together (found in review: the label named the key only)."""
    from app.comments.anonymous import pseudonym

    first, second = made(petition_id=VECTOR["petition_id"]), made(petition_id=VECTOR["petition_id"] + 1)
    assert first.blinded_msg != second.blinded_msg and first.message != second.message
    assert pseudonym(made("discuss", petition_id=1).message) != pseudonym(made("discuss", petition_id=2).message)


def test_a_petition_id_that_is_not_one_is_refused():
    for wrong in (0, -1, True, "7"):
        with pytest.raises(ValueError, match="not a petition id"):
            made(petition_id=wrong)  # type: ignore[arg-type]


def test_every_purpose_is_in_the_vector():
    """The browser holds the same vector (tests/test_browser_wallet_devices.py): each purpose the wallet
    derives must be in it, or the two could drift for the one left out."""
    assert sorted(item["purpose"] for item in VECTOR["credentials"]) == sorted(derive.PURPOSES)


def test_a_ballot_credential_names_its_ballot_and_no_petition():
    """Ballot 7's credential and petition 7's signer credential under one key are unrelated; a ballot credential
    needs the ballot's id (a petition id alone is not one), and a signer credential the petition's."""
    ballot = derive.credential(SECRET, purpose="ballot", ballot_id=7, key_id=VECTOR["key_id"], public=PUBLIC)
    signer = made("signer", petition_id=7)
    other_ballot = derive.credential(SECRET, purpose="ballot", ballot_id=8, key_id=VECTOR["key_id"], public=PUBLIC)
    assert len({ballot.message, signer.message, other_ballot.message}) == 3
    assert len({ballot.blinded_msg, signer.blinded_msg, other_ballot.blinded_msg}) == 3
    with pytest.raises(ValueError, match="not a ballot id"):
        derive.credential(SECRET, purpose="ballot", petition_id=7, key_id=VECTOR["key_id"], public=PUBLIC)
    with pytest.raises(ValueError, match="not a petition id"):
        derive.credential(SECRET, purpose="signer", ballot_id=7, key_id=VECTOR["key_id"], public=PUBLIC)
    with pytest.raises(ValueError, match="unknown purpose"):
        derive.credential(SECRET, purpose="vote", ballot_id=7, key_id=VECTOR["key_id"], public=PUBLIC)


def test_another_wallet_cannot_finalize_this_wallets_reply():
    reply = bytes.fromhex(VECTOR["credentials"][0]["blind_sig"])
    other = derive.credential(
        bytes(16), purpose="sign", petition_id=VECTOR["petition_id"], key_id=VECTOR["key_id"], public=PUBLIC
    )
    with pytest.raises(blindrsa.BlindSignatureError):
        other.finalize(PUBLIC, reply)


def test_the_check_recognises_the_wallet_and_only_it():
    assert derive.check(SECRET).hex() == VECTOR["check"]
    assert derive.matches(SECRET, bytes.fromhex(VECTOR["check"]))
    assert not derive.matches(bytes(16), bytes.fromhex(VECTOR["check"]))


def test_the_recovery_code_round_trips_however_it_is_typed():
    code = VECTOR["recovery_code"]
    assert derive.recovery_code(SECRET) == code
    assert len(code.replace("-", "")) == derive.CODE_CHARS
    assert derive.parse_recovery_code(code) == SECRET
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert derive.parse_recovery_code(typed) == SECRET
    for _ in range(50):
        secret = derive.new_secret()
        assert derive.parse_recovery_code(derive.recovery_code(secret)) == secret


def test_a_typo_or_a_short_code_is_told_in_plain_words():
    code = VECTOR["recovery_code"]
    wrong = ("1" if code[0] != "1" else "2") + code[1:]
    with pytest.raises(derive.RecoveryCodeError, match="typo"):
        derive.parse_recovery_code(wrong)
    with pytest.raises(derive.RecoveryCodeError, match="28 letters and digits"):
        derive.parse_recovery_code(code[:-5])
    with pytest.raises(derive.RecoveryCodeError, match="28 letters and digits"):
        derive.parse_recovery_code(code[:-1] + "U")


def test_a_typo_in_the_last_characters_unused_bits_is_caught_too():
    code = derive.recovery_code(SECRET)
    last = code[-1]
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    same_high_bit = [
        char for char in alphabet if char != last and alphabet.index(char) >> 4 == alphabet.index(last) >> 4
    ]
    for char in same_high_bit:
        with pytest.raises(derive.RecoveryCodeError, match="typo"):
            derive.parse_recovery_code(code[:-1] + char)
