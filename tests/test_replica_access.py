"""Who may read a petition's tally and log is decided on the primary, never on a read replica that may lag:
a petition just hidden must not stay public there (review finding, issue #24)."""

from app.models.petitions import Petition
from app.moderation import service as moderation
from tests import factories
from tests.test_replica import _arrange, _catch_up, app_with_replica, databases, migrated  # noqa: F401


def test_a_hidden_petition_is_not_served_from_a_lagging_replica(app_with_replica) -> None:
    app, client = app_with_replica
    petition_id = _arrange(app, lambda db, rt: factories.open_petition(db, rt).id)
    _catch_up(app)
    assert client.get(f"/api/v1/petitions/{petition_id}/tally").status_code == 200
    assert client.get(f"/api/v1/petitions/{petition_id}/log").status_code == 200
    assert client.get(f"/petitions/{petition_id}/report").status_code == 200
    assert client.get(f"/api/v1/petitions/{petition_id}/log/checkpoint").status_code == 200
    _arrange(
        app,
        lambda db, rt: moderation.hide(
            db=db,
            rt=rt,
            petition=db.get(Petition, petition_id),
            moderator=factories.moderator(db),
            reason="Names a colleague.",
        ),
    )
    assert client.get(f"/api/v1/petitions/{petition_id}").status_code == 404  # the primary: hidden
    # The replica has not replayed the hide (lag, or a stalled standby): the public must not be served from it.
    assert client.get(f"/api/v1/petitions/{petition_id}/tally").status_code == 404
    assert client.get(f"/petitions/{petition_id}/report").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log/checkpoints").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log/entries").status_code == 404
    # The proofs and tiles, read in sessions of their own, ask the primary too.
    assert client.get(f"/api/v1/petitions/{petition_id}/log/checkpoint").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log/inclusion?index=0&size=1").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log/consistency?old=1&new=1").status_code == 404
    assert client.get(f"/api/v1/petitions/{petition_id}/log/tile/0/000.p/1").status_code == 404
