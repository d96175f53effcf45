"""The consumer portal (SPEC §10) in real headless Chromium, against a real server and a real
receiver: what a tenant's developer sees and does. Each page's screenshot is saved (to this
run's tmp dir, and to $PORTAL_SCREENSHOTS when set: docs/portal holds the committed ones).

The portal does not depend on the storage engine (its API tests run on both), so SQLite only."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from standardwebhooks.webhooks import Webhook

from tests.conftest import ServerFactory
from tests.support.browser import PHONE, Browser, start_chromium
from tests.support.clock import MovableClock
from tests.support.factories import publish, subscribe
from tests.support.http import Http
from tests.support.portal import portal_link
from tests.support.receiver import Receiver
from tests.support.server import RunningServer
from webhook_grpc._gen.webhooks.v1 import subscriptions_pb2 as spb
from webhook_grpc._gen.webhooks.v1.subscriptions_pb2 import CreateSubscriptionResponse
from webhook_grpc.domain.rate_limit import MAX_RATE_LIMIT_PER_SECOND

EXPENSIVE = 'type == "product.price_changed" && double(data.selling_price) > 100.0'


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'webhooks.db'}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshot_folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folders = [tmp_path_factory.mktemp("portal-screenshots")]
    if os.environ.get("PORTAL_SCREENSHOTS"):
        folders.append(Path(os.environ["PORTAL_SCREENSHOTS"]))
    return folders


@pytest.fixture
async def browser(chromium: webdriver.Chrome, screenshot_folders: list[Path]) -> Browser:
    chromium.delete_all_cookies()
    chromium.set_window_size(1280, 900)
    return Browser(chromium, screenshot_folders)


@pytest.fixture
async def admin(server: RunningServer) -> AsyncIterator[Http]:
    """The development server of `make run` has no tokens: anyone on loopback is an admin,
    and a portal session is still one tenant (tests/integration/test_portal_sessions.py)."""
    async with aiohttp.ClientSession() as client:
        yield Http(server.http, client, None)


async def sign_in(browser: Browser, link: str) -> None:
    """Open a portal link and press its button, as a person would."""
    await browser.open(link)
    await browser.click("button", "Open the portal")
    await browser.element("main h1", "Endpoints")


async def open_endpoint_page(
    server: RunningServer, admin: Http, browser: Browser, url: str
) -> CreateSubscriptionResponse:
    """Subscribe `url` for acme and open its page in the portal."""
    created = await subscribe(server, url)
    await sign_in(browser, await portal_link(admin, "acme"))
    await browser.go(f"#/endpoints/{created.subscription.id}")
    await browser.element("main h1", url)
    return created


async def test_a_tenant_sees_its_own_endpoints_and_the_link_works_once(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    await subscribe(server, receiver.url("/acme-orders"), description="Order sync")
    await subscribe(server, receiver.url("/acme-prices"), ["product.*"])
    await subscribe(server, receiver.url("/globex-secret"), tenant_id="globex")
    await publish(server, "product.created", "prod_1", {"sku": "A-1", "name": "Anvil"})
    link = await portal_link(admin, "acme")

    await browser.open(link)
    await browser.screenshot("login")
    await browser.click("button", "Open the portal")
    await browser.wait_text("/acme-orders")
    page = await browser.text("main")
    assert "/acme-prices" in page and "Order sync" in page
    assert "globex" not in page
    await browser.screenshot("endpoints")
    await browser.size(*PHONE)
    await browser.screenshot("endpoints-phone")
    await browser.size(1280, 900)

    await browser.click("header nav a", "Event catalog")
    await browser.wait_text("product.created")
    await browser.screenshot("catalog")
    await browser.click("header nav a", "Feed")
    await browser.wait_text("prod_1")
    await browser.screenshot("feed")
    await browser.fill("#feed-type", "customer.*")
    await browser.click("button", "Filter")
    await browser.wait_text("No events.")
    await browser.fill("#feed-type", "product.*")
    await browser.fill("#feed-entity", "prod_1")
    await browser.click("button", "Filter")
    await browser.element("li.event", "prod_1")

    # The link is spent: opening it again shows a refusal, and no new session.
    await browser.open(link)
    await browser.wait_text("already used")
    await browser.screenshot("login-refused")


async def test_failed_attempts_are_shown_and_a_retry_succeeds(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    receiver.on("/down", statuses=[500], body=b"upstream exploded")
    subscription = (await subscribe(server, receiver.url("/down"))).subscription
    await publish(server, "product.created", "prod_9")
    await sign_in(browser, await portal_link(admin, "acme"))

    await browser.click("main a", "/down")
    await browser.element("main h1", "/down")
    await browser.click("main a", "Delivery log")
    failed = "article.delivery[data-status='failed']"
    await browser.element(failed)
    statuses = await browser.script(
        "return [...document.querySelectorAll(arguments[0] + ' td.http-status')]"
        ".map(cell => cell.textContent)",
        failed,
    )
    assert statuses == ["500"] * 5  # every attempt of the schedule, each with its status
    assert "upstream exploded" in await browser.text("main")
    await browser.screenshot("delivery-log")

    await browser.click("label", "Failed only")
    await browser.element("main[data-route$='?failed=1']:not([aria-busy])")
    await browser.element(failed)
    await browser.click("label", "Failed only")
    await browser.element("main[data-route$='/deliveries']:not([aria-busy])")

    receiver.on("/down", statuses=[200])
    await browser.click(f"{failed} button", "Retry")
    succeeded = await browser.element("article.delivery[data-status='succeeded']")
    assert "200" in succeeded.text
    assert len(receiver.at("/down")) == 6
    assert subscription.id in await browser.script("return location.hash")
    await browser.click("label", "Failed only")
    await browser.element("main[data-route$='?failed=1']:not([aria-busy])")
    await browser.wait_text("No failed deliveries")
    await browser.click("label", "Failed only")
    await browser.element("article.delivery[data-status='succeeded']")
    await browser.screenshot("delivery-log-retried")


async def test_rotating_the_secret_shows_it_once_and_deliveries_carry_both_signatures(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    created = await open_endpoint_page(server, admin, browser, receiver.url("/rotating"))
    await browser.click("button", "Rotate secret")
    field = await browser.element("#new-secret")
    new_secret = str(field.get_attribute("value"))
    assert new_secret.startswith("whsec_") and new_secret != created.secret
    await browser.screenshot("endpoint-secret-rotated")

    await browser.go("#/endpoints")
    await browser.element("main h1", "Endpoints")
    await browser.go(f"#/endpoints/{created.subscription.id}")
    await browser.element("main h1", "/rotating")
    assert new_secret not in await browser.script("return document.body.innerHTML")

    await browser.click("button", "Send test event")
    await browser.wait_text("Test event sent", "#status")
    await receiver.wait_count(1, "/rotating")
    [delivery] = receiver.at("/rotating")
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    for secret in (new_secret, created.secret):
        Webhook(secret).verify(delivery.body, delivery.headers)
    await browser.screenshot("endpoint")


async def test_the_pages_cannot_change_anything_without_the_csrf_token(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    created = await open_endpoint_page(server, admin, browser, receiver.url("/guarded"))
    path = f"/api/v1/webhooks/subscriptions/{created.subscription.id}/disable"
    status = await browser.async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', credentials: 'same-origin'})"
        ".then(r => done(r.status), e => done(String(e)));",
        path,
    )
    assert status == 403
    await browser.click("button", "Disable")  # the page's own call carries the token
    await browser.wait_text("Endpoint disabled", "#status")


async def test_an_expired_session_is_refused(
    make_server: ServerFactory, browser: Browser, receiver: Receiver
) -> None:
    clock = MovableClock()
    server = await make_server(clock=clock)
    async with aiohttp.ClientSession() as client:
        link = await portal_link(Http(server.http, client, None), "acme", ttl="600s")
    await sign_in(browser, link)
    clock.advance(timedelta(minutes=10))
    await browser.click("header nav a", "Feed")
    await browser.wait_text("Your portal session has ended")
    await browser.screenshot("session-ended")


async def test_signing_out(server: RunningServer, admin: Http, browser: Browser) -> None:
    await sign_in(browser, await portal_link(admin, "acme"))
    await browser.click("button", "Sign out")
    await browser.wait_text("You have signed out")
    await browser.open(f"{server.http}/portal/#/endpoints")
    await browser.wait_text("Your portal session has ended")


async def test_the_portal_works_from_the_keyboard(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    """Tab to a link, Enter to follow it, Tab to a button, Enter to press it: focus lands on
    each new page's heading, so the next Tab starts from there."""
    created = await subscribe(server, receiver.url("/by-keyboard"))
    await sign_in(browser, await portal_link(admin, "acme"))
    assert await browser.focused() == "Endpoints"  # the page's heading
    await _tab_to(browser, "/by-keyboard")
    await browser.press(Keys.ENTER)
    await browser.element("main h1", "/by-keyboard")
    await browser.wait(lambda d: d.execute_script("return document.activeElement.tagName") == "H1")
    await _tab_to(browser, "Send test event")
    await browser.press(Keys.ENTER)
    await browser.wait_text("Test event sent", "#status")
    await receiver.wait_count(1, "/by-keyboard")
    await _tab_to(browser, "Delete…")
    await browser.press(Keys.ENTER)
    assert await browser.focused() == "Cancel"  # the safe choice first
    await browser.back_tab()
    assert await browser.focused() == "Yes, delete this endpoint"
    await browser.press(Keys.ENTER)
    await browser.element("main h1", "Endpoints")
    assert created.subscription.id not in await browser.script("return document.body.innerHTML")


async def _tab_to(browser: Browser, text: str, most: int = 40) -> None:
    for _ in range(most):
        await browser.press(Keys.TAB)
        if text in await browser.focused():
            return
    raise AssertionError(f"{text!r} cannot be reached with Tab")


async def test_the_delivery_controls_are_edited_on_the_endpoint_page(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    created = await open_endpoint_page(server, admin, browser, receiver.url("/controlled"))
    facts = await browser.text("dl.facts")
    assert "Ordering\nunordered" in facts and "Rate limit\nnone" in facts
    assert "Custom headers\nnone" in facts and "HMAC-SHA256" in facts

    await browser.fill("#filter", EXPENSIVE)
    await browser.click("button", "Add header")
    await browser.press("X-Tenant", Keys.TAB, "acme")  # the new row's name has the focus
    await browser.click("button", "Add header")
    await browser.press("Host", Keys.TAB, "evil.example")
    await browser.click("label", "Deliver in order (FIFO)")
    await browser.fill("#rate-limit", "50")
    await browser.click("button", "Save")
    # The server refuses the reserved header: its reason is shown by the headers, nothing saved.
    error = await browser.element("#headers-error", "Host")
    assert "reserved" in error.text
    assert await browser.script(
        "return document.activeElement.value === 'Host' "
        "&& document.activeElement.getAttribute('aria-invalid') === 'true'"
    )
    assert (await get_subscription(server, created)).filter == ""
    await browser.screenshot("endpoint-header-refused")

    await browser.click("button[aria-label='Remove header Host']")
    await browser.click("button", "Save")
    await browser.wait_text("Saved.", "#status")
    stored = await get_subscription(server, created)
    assert stored.filter == EXPENSIVE
    assert dict(stored.headers) == {"X-Tenant": "acme"}
    assert stored.ordering == spb.ORDERING_FIFO
    assert stored.rate_limit_per_second == 50
    facts = await browser.text("dl.facts")
    assert EXPENSIVE in facts and "X-Tenant: acme" in facts
    assert "FIFO" in facts and "50 attempts per second" in facts
    await browser.script("window.scrollTo(0, 0)")
    await browser.screenshot("endpoint-controls")

    # Reopened, the form shows what is stored; then everything is cleared again.
    await browser.go("#/endpoints")
    await browser.element("main h1", "Endpoints")
    await browser.go(f"#/endpoints/{created.subscription.id}")
    await browser.element("main h1", "/controlled")
    assert await browser.script("return document.getElementById('filter').value") == EXPENSIVE
    assert await browser.script("return document.getElementById('fifo').checked") is True
    await browser.fill("#filter", "")
    await browser.click("button[aria-label='Remove header X-Tenant']")
    await browser.click("label", "Deliver in order (FIFO)")
    await browser.fill("#rate-limit", "")
    await browser.click("button", "Save")
    await browser.wait_text("Saved.", "#status")
    stored = await get_subscription(server, created)
    assert (stored.filter, dict(stored.headers)) == ("", {})
    assert (stored.ordering, stored.rate_limit_per_second) == (spb.ORDERING_UNORDERED, 0)


async def test_a_filter_error_is_shown_at_its_position_and_a_rate_above_the_bound_refused(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    created = await open_endpoint_page(server, admin, browser, receiver.url("/filtered"))
    first_line = 'type == "product.created" &&\n'
    await browser.fill("#filter", first_line + "  shout(data.sku)")
    await browser.click("button", "Save")
    error = await browser.element("#filter-error", "line 2, column")
    assert await browser.script(
        "const f = document.activeElement;"
        "return f.id === 'filter' && f.getAttribute('aria-invalid') === 'true'"
        " && f.getAttribute('aria-describedby').includes('filter-error')"
    )
    # The caret is put on the line the server names.
    line, column = (int(n) for n in re.findall(r"line (\d+), column (\d+)", error.text)[0])
    caret = await browser.script("return document.activeElement.selectionStart")
    assert line == 2 and caret == len(first_line) + column - 1
    assert column > 1 and caret < len(first_line) + len("  shout(data.sku)")
    assert (await get_subscription(server, created)).filter == ""
    await browser.screenshot("endpoint-filter-error")

    await browser.fill("#filter", 'type == "product.created"')
    await browser.fill("#rate-limit", str(MAX_RATE_LIMIT_PER_SECOND + 1))
    await browser.click("button", "Save")
    await browser.element("#rate-limit-error", str(MAX_RATE_LIMIT_PER_SECOND))
    assert await browser.script("return document.getElementById('filter-error').hidden")
    assert (await get_subscription(server, created)).rate_limit_per_second == 0


async def test_an_endpoint_added_with_ed25519_shows_its_public_key(
    server: RunningServer, admin: Http, browser: Browser, receiver: Receiver
) -> None:
    await sign_in(browser, await portal_link(admin, "acme"))
    await browser.click("main a", "Add endpoint")
    await browser.element("main h1", "Add an endpoint")
    assert (
        await browser.script("return document.getElementById('signing-algorithm').value")
        == "SIGNING_ALGORITHM_HMAC_SHA256"
    )
    await browser.fill("#url", receiver.url("/signed"))
    await browser.script(
        "const s = document.getElementById('signing-algorithm');"
        "s.value = 'SIGNING_ALGORITHM_ED25519'; s.dispatchEvent(new Event('change'));"
    )
    await browser.fill("#rate-limit", "20")
    await browser.click("button", "Add endpoint")
    field = await browser.element("#created-public-key")
    public_key = str(field.get_attribute("value"))
    assert not await browser.script("return document.querySelector('form.edit').checkVisibility()")
    # Its shared secret (for X-Webhook-Signature) is shown once, beside the public key.
    assert str((await browser.element("#created-secret")).get_attribute("value")).startswith(
        "whsec_"
    )
    assert public_key.startswith("whpk_")
    await browser.screenshot("endpoint-added-ed25519")

    await browser.click("main a", "Open the endpoint")
    await browser.element("main h1", "/signed")
    assert await browser.text("#public-key") == public_key
    assert "Ed25519" in await browser.text("dl.facts")
    [stored] = (
        await server.subscriptions.ListSubscriptions(spb.ListSubscriptionsRequest(tenant_id="acme"))
    ).subscriptions
    assert stored.signing_algorithm == spb.SIGNING_ALGORITHM_ED25519
    assert (stored.public_key, stored.rate_limit_per_second) == (public_key, 20)
    await browser.screenshot("endpoint-ed25519")
    await browser.click("button", "Rotate secret")  # a new key pair: its public key is shown
    rotated = str((await browser.element("#new-public-key")).get_attribute("value"))
    assert rotated.startswith("whpk_") and rotated != public_key
    await browser.wait(lambda d: d.find_element(By.ID, "public-key").text == rotated)

    # The default is HMAC: its secret is shown once, and there is no public key.
    await browser.go("#/endpoints/new")
    await browser.element("main h1", "Add an endpoint")
    await browser.fill("#url", receiver.url("/hmac"))
    await browser.click("button", "Add endpoint")
    secret = await browser.element("#created-secret")
    assert str(secret.get_attribute("value")).startswith("whsec_")
    assert not await browser.script("return document.getElementById('created-public-key')")


async def get_subscription(
    server: RunningServer, created: CreateSubscriptionResponse
) -> spb.Subscription:
    reply = await server.subscriptions.GetSubscription(
        spb.GetSubscriptionRequest(id=created.subscription.id)
    )
    return reply.subscription
