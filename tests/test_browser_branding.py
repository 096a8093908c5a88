"""In a real browser: an admin gives the organization its name, logo and colour from the rules page, and every
page's header shows them, at a phone's width and a desktop's, with axe-core finding nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import live_server
from tests.accessibility import Audit
from tests.test_branding import CLEAN_SVG

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[live_server.LiveServer]:
    live = live_server.serve_demo(tmp_path_factory.mktemp("branding") / "branding.db")
    try:
        yield live
    finally:
        live.stop()


def test_an_admin_brands_the_organization_and_every_page_shows_it(person, chromium, server, tmp_path) -> None:
    from playwright.sync_api import FilePayload, expect

    audit = Audit()
    admin = audit.watch(person("admin"))
    main = admin.locator("main")
    admin.goto("/admin/settings")
    audit.check(admin)
    # Too light a colour first: refused, with the ratio, next to the field.
    main.get_by_label("Name shown in the header").fill("Acme Workers")
    main.get_by_label("Accent colour").fill("#7fb2e5")
    main.get_by_label("Logo").set_input_files(
        files=[FilePayload(name="logo.svg", mimeType="image/svg+xml", buffer=CLEAN_SVG)]
    )
    main.get_by_role("button", name="Save the look").click()
    expect(main.get_by_label("Accent colour")).to_have_attribute("aria-invalid", "true")
    expect(main).to_contain_text("has a contrast of only")
    audit.check(admin)
    main.get_by_label("Accent colour").fill("#7a1f5c")
    main.get_by_label("Logo").set_input_files(
        files=[FilePayload(name="logo.svg", mimeType="image/svg+xml", buffer=CLEAN_SVG)]
    )
    main.get_by_role("button", name="Save the look").click()
    expect(admin.locator("main .flashes")).to_contain_text("Saved")
    expect(main.get_by_role("img", name="The current logo")).to_be_visible()
    audit.check(admin)

    # A visitor sees the name and the logo in the header, and the colour on the buttons.
    for width in (360, 1280):
        visitor = chromium.new_context(base_url=server.base_url, viewport={"width": width, "height": 800})
        try:
            page = visitor.new_page()
            page.goto("/petitions")
            brand = page.locator(".site-header .brand")
            expect(brand).to_have_text("Acme Workers")
            logo = brand.locator("img")
            expect(logo).to_be_visible()
            assert logo.evaluate("(image) => image.complete && image.naturalWidth > 0"), "the logo did not load"
            assert page.evaluate("document.title").endswith("· Acme Workers")
            colour = page.locator("main button[type=submit]").first.evaluate(
                "(button) => getComputedStyle(button).backgroundColor"
            )
            assert colour == "rgb(122, 31, 92)", colour
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            Audit().check(page)
        finally:
            visitor.close()
    audit.assert_all_checked()
