import pytest

from tests import factories
from tests.conftest import Browser, sign_in_as

pytestmark = pytest.mark.one_database


def test_pages_render(browser: Browser, db, rt) -> None:
    creator = factories.worker(db, name="Creator")
    sign_in_as(browser, db, creator)
    d = factories.draft_petition(db, rt, creator)
    g = factories.petition_gathering_sponsors(db, rt, creator, title="Gathering one")
    m = factories.petition_in_moderation(db, rt, creator, title="Moderated one")
    o = factories.open_petition(db, rt, creator, title="Open one about screens")
    c = factories.closed_petition(db, rt, creator, title="Closed one")
    for url in [
        "/petitions",
        "/petitions?q=screens",
        "/petitions/new",
        "/petitions/mine",
        f"/petitions/{d.id}",
        f"/petitions/{g.id}",
        f"/petitions/{m.id}",
        f"/petitions/{o.id}",
        f"/petitions/{c.id}",
        f"/petitions/{o.id}/versions",
        f"/petitions/{d.id}/edit",
        f"/petitions/{o.id}/edit",
        f"/petitions/{o.id}/signers",
    ]:
        response = browser.get(url)
        assert response.status_code == 200, (url, response.text[-2000:])
