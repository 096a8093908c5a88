"""`undersigned client answer URL --choice N` (issue #25), against a live server through a recording proxy: the
poll's credential comes with the wallet's bundle (members) or in exchange for the signer credential (signers), the
answer goes without cookies, and running it again changes the answer."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.ballots import service as ballots
from app.models.accounts import Role, RoleGrant, User
from app.models.ballots import Ballot, BallotAnswer, BallotAudience, BallotKind
from app.models.petitions import Petition
from tests import live_server
from tests.test_client import (  # noqa: F401 (pytest finds the fixtures by name)
    PETITION,
    Proxy,
    new_member,
    petition_url,
    proxy,
    run,
    server,
    signed_in,
)


def make_ballot(server: live_server.LiveServer, *, petition_id: int | None = None) -> int:
    app = server.app
    rt = app.state.runtime
    with app.state.sessionmaker.begin() as db:
        if petition_id is None:
            author = db.scalars(
                select(User)
                .options(selectinload(User.roles))
                .join(RoleGrant, RoleGrant.user_id == User.id)
                .where(RoleGrant.role == Role.responder)
            ).first()
            petition = None
        else:
            petition = db.get_one(Petition, petition_id)
            author = db.scalars(
                select(User).options(selectinload(User.roles)).where(User.id == petition.creator_id)
            ).one()
        assert author is not None
        ballot = ballots.create(
            db,
            rt,
            actor=author,
            petition=petition,
            kind=BallotKind.single,
            question="Should the office open at eight?",
            options=["Yes", "No", "Later"],
            max_choices=None,
            audience=BallotAudience.members if petition is None else BallotAudience.signers,
            opens_at=None,
            closes_at=rt.clock.now() + timedelta(days=7),
        )
        return ballot.id


def counted(server: live_server.LiveServer, ballot_id: int) -> list[tuple[int, str, bool]]:
    with server.app.state.sessionmaker.begin() as db:
        return [
            (row.revision, row.choice, row.superseded)
            for row in db.scalars(
                select(BallotAnswer).where(BallotAnswer.ballot_id == ballot_id).order_by(BallotAnswer.revision)
            )
        ]


def test_a_member_answers_a_members_poll_and_changes_the_answer(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path
) -> None:
    ballot_id = make_ballot(server)
    url = f"{proxy.base_url}/polls/{ballot_id}"
    wallet = tmp_path / "wallet.json"
    # Collected in this run, so queued (tests/test_ballot_attacks_cli.py); --now sends it at once, warned.
    first = run("answer", url, "--choice", "1", "--now", *signed_in(new_member(server, "tove"), wallet))
    assert first.exit_code == 0, first.output
    assert "Warning: Sending now" in first.output
    assert "was sent without cookies" in first.output
    (sent,) = [
        seen for seen in proxy.seen if seen.method == "POST" and seen.path.endswith(f"/ballots/{ballot_id}/answers")
    ]
    assert sent.cookie is None
    again = run("answer", url, "--choice", "2", "--wallet", str(wallet))
    assert again.exit_code == 0, again.output
    assert counted(server, ballot_id) == [(1, "[1]", True), (2, "[2]", False)]
    with server.app.state.sessionmaker.begin() as db:
        assert db.get_one(Ballot, ballot_id).answers_counted == 1
    # The same answer again changes nothing, said plainly; an option that does not exist is refused before sending.
    same = run("answer", url, "--choice", "2", "--wallet", str(wallet))
    assert same.exit_code == 0 and "already counted" in same.output
    wrong = run("answer", url, "--choice", "7", "--wallet", str(wallet))
    assert wrong.exit_code == 1 and "does not exist" in wrong.output


def test_a_named_signer_answers_a_signers_poll_through_the_exchange(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path
) -> None:
    petition = petition_url(server, proxy, PETITION)
    petition_id = int(petition.rstrip("/").split("/")[-1])
    ballot_id = make_ballot(server, petition_id=petition_id)
    url = f"{proxy.base_url}/api/v1/ballots/{ballot_id}"
    wallet = tmp_path / "wallet.json"
    email = new_member(server, "ulla")
    not_yet = run("answer", url, "--choice", "0", *signed_in(email, wallet))
    assert not_yet.exit_code == 1 and "holds no signer credential" in " ".join(not_yet.output.split())
    signed = run("sign", petition, "--public", "--wallet", str(wallet))
    assert signed.exit_code == 0, signed.output
    answered = run("answer", url, "--choice", "0", "--now", "--wallet", str(wallet))
    assert answered.exit_code == 0, answered.output
    (exchanged,) = [seen for seen in proxy.seen if seen.path.endswith(f"/ballots/{ballot_id}/exchange")]
    assert exchanged.cookie is None
    assert counted(server, ballot_id) == [(1, "[0]", False)]


def test_an_anonymous_signer_of_the_command_line_answers_a_signers_poll(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path
) -> None:
    """`client sign --anonymous` asks for the signer credential with the cookie-less signature; `client answer`
    then exchanges it, cookie-less too."""
    petition = petition_url(server, proxy, PETITION)
    petition_id = int(petition.rstrip("/").split("/")[-1])
    ballot_id = make_ballot(server, petition_id=petition_id)
    wallet = tmp_path / "wallet.json"
    email = new_member(server, "vera")
    signed = run("sign", petition, "--anonymous", "--now", "--accept-small-crowd", *signed_in(email, wallet))
    assert signed.exit_code == 0, signed.output
    (sent,) = [seen for seen in proxy.seen if seen.method == "POST" and seen.path == "/api/v1/anonymous/signatures"]
    assert sent.cookie is None
    held = json.loads(wallet.read_text())["credentials"]
    assert [item["status"] for slot, item in held.items() if slot.endswith(f"|{petition_id}|signer")] == ["held"]
    answered = run("answer", f"{proxy.base_url}/polls/{ballot_id}", "--choice", "2", "--wallet", str(wallet))
    assert answered.exit_code == 0, answered.output
    assert counted(server, ballot_id) == [(1, "[2]", False)]


def test_the_client_says_when_an_answer_is_counted_truly_for_live_and_kept_polls() -> None:
    """A live poll's small group waits for k answers or the close (app/ballots/answers.py), a kept poll's for the
    longest delay at most: "within N min" alone is true for neither."""
    from app.clients.answer import counted_when

    assert counted_when({"results_live": False}, 0) == "It is counted already."
    kept = counted_when({"results_live": False}, 3600)
    assert "within 60 min) if enough colleagues answer meanwhile" in kept and "longest wait or at the close" in kept
    live = counted_when({"results_live": True}, 3600)
    assert "within" not in live and "once enough colleagues have answered" in live and "or at the close" in live


def test_a_member_counts_the_answer_under_their_group_for_the_breakdown(
    server: live_server.LiveServer, proxy: Proxy, tmp_path: Path
) -> None:
    """`--group` on a poll put to several groups: checked before anything is sent, then sent with the answer
    (still without cookies) and sealed on its row."""
    from datetime import date

    from app.ballots import answers, audiences
    from app.models.accounts import address_lookup
    from app.models.ballots import BallotIssuance
    from app.models.signatures import GroupKind
    from app.signatures import groups as signer_groups

    app = server.app
    rt = app.state.runtime
    emails = [new_member(server, f"eng{i}") for i in range(5)] + [new_member(server, f"lyon{i}") for i in range(5)]
    with app.state.sessionmaker.begin() as db:
        engineering = signer_groups.add(db=db, rt=rt, kind=GroupKind.department, name="Platform team")
        lyon = signer_groups.add(db=db, rt=rt, kind=GroupKind.location, name="Nantes office")
        db.flush()
        people = {email: db.scalars(select(User).where(address_lookup(email))).one() for email in emails}
        for email in emails:
            mine = engineering if email.startswith("eng") else lyon
            audiences.set_member_groups(
                db=db,
                user=people[email],
                department=str(mine.id) if mine is engineering else None,
                location=str(mine.id) if mine is lyon else None,
            )
        author = db.scalars(
            select(User)
            .options(selectinload(User.roles))
            .join(RoleGrant, RoleGrant.user_id == User.id)
            .where(RoleGrant.role == Role.responder)
        ).first()
        assert author is not None
        ballot = ballots.create(
            db,
            rt,
            actor=author,
            petition=None,
            kind=BallotKind.single,
            question="Should the office open at eight?",
            options=["Yes", "No"],
            max_choices=None,
            audience=BallotAudience.groups,
            opens_at=None,
            closes_at=rt.clock.now() + timedelta(days=7),
            groups=[engineering.id, lyon.id],
        )
        # Four colleagues of Engineering collected the credential already; the fifth is the one answering here.
        db.add_all(
            BallotIssuance(account_id=people[email].id, ballot_id=ballot.id, issued_on=date.today())
            for email in emails[1:5]
        )
        ballot_id, engineering_id = ballot.id, engineering.id
    url = f"{proxy.base_url}/polls/{ballot_id}"
    wallet = tmp_path / "wallet.json"
    wrong = run("answer", url, "--choice", "0", "--group", "424242", "--now", *signed_in(emails[0], wallet))
    assert wrong.exit_code == 1 and "not one this poll is put to" in wrong.output
    sent = run("answer", url, "--choice", "0", "--group", str(engineering_id), "--now", *signed_in(emails[0], wallet))
    assert sent.exit_code == 0, sent.output
    assert "It counts under Platform team in the breakdown at the close" in sent.output
    (posted,) = [
        seen for seen in proxy.seen if seen.method == "POST" and seen.path.endswith(f"/ballots/{ballot_id}/answers")
    ]
    assert posted.cookie is None
    with app.state.sessionmaker.begin() as db:
        (row,) = db.scalars(select(BallotAnswer).where(BallotAnswer.ballot_id == ballot_id))
        assert answers.answer_group(rt, row) == engineering_id
