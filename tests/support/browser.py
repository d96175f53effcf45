"""Real headless Chromium for the portal's tests, driven by Selenium.

Only the system's Chromium and chromedriver (Debian's `chromium` and `chromium-driver`) are
used, so Selenium Manager never downloads anything. Without them the tests skip, except in CI
(CI=true), where they fail. Selenium's calls block, and the server under test runs on the
test's event loop, so every browser call runs in a thread (`await browser.x(...)`)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

T = TypeVar("T")
WAIT = 15.0
DESKTOP = (1280, 900)
PHONE = (390, 844)


def chromium_or_skip() -> tuple[str, str]:
    """The paths of chromium and chromedriver; skip (or fail in CI) without them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        message = (
            "the portal's browser tests need Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver


def start_chromium() -> webdriver.Chrome:
    browser, driver = chromium_or_skip()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    # The page's console, for the message of a wait that times out.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


class Browser:
    """One Chromium, called from async tests."""

    def __init__(self, driver: webdriver.Chrome, screenshots: list[Path]) -> None:
        self.driver = driver
        self._screenshots = screenshots

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    def _state(self) -> str:
        body = self.driver.find_element(By.TAG_NAME, "body").text
        console = [entry["message"] for entry in self.driver.get_log("browser")]
        return f"at {self.driver.current_url}, the page says:\n{body}\nconsole: {console}"

    async def open(self, url: str) -> None:
        await self._run(self.driver.get, url)

    async def go(self, hash_route: str) -> None:
        """Follow an in-portal route (#/…) as a link would."""
        await self.script(f"location.hash = {hash_route!r};")

    async def script(self, source: str, *args: Any) -> Any:
        return await self._run(self.driver.execute_script, source, *args)

    async def async_script(self, source: str, *args: Any) -> Any:
        return await self._run(self.driver.execute_async_script, source, *args)

    async def wait(self, condition: Callable[[webdriver.Chrome], T], timeout: float = WAIT) -> T:
        """Poll `condition` until it is truthy (a deadline, never a fixed sleep)."""

        def until() -> T:
            try:
                return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                    lambda driver: _quiet(condition, driver)
                )
            except TimeoutException:
                raise AssertionError(f"waited {timeout}s in vain; {self._state()}") from None

        return await self._run(until)

    async def element(self, css: str, text: str | None = None) -> WebElement:
        """The first visible element matching `css` (and containing `text`), once there is one."""

        def found(driver: webdriver.Chrome) -> WebElement | None:
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed() and (text is None or text in element.text):
                    return element
            return None

        return await self.wait(found)

    async def click(self, css: str, text: str | None = None) -> None:
        """Click the first visible match once the page is rendered (retried while the page
        replaces it under the click)."""

        def clicked(driver: webdriver.Chrome) -> bool:
            if driver.find_elements(By.CSS_SELECTOR, "main[aria-busy='true']"):
                return False
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed() and (text is None or text in element.text):
                    element.click()
                    return True
            return False

        await self.wait(clicked)

    async def fill(self, css: str, value: str) -> None:
        """Type `value` into a field, replacing what it held (as a keyboard would)."""
        field = await self.element(css)
        await self._run(field.clear)
        await self._run(field.send_keys, value)

    async def press(self, *keys: str) -> None:
        """Keys sent to whatever has the focus, as a keyboard user types them."""
        await self._run(lambda: ActionChains(self.driver).send_keys(*keys).perform())

    async def back_tab(self) -> None:
        """Shift+Tab: the focus moves back one stop."""
        await self._run(
            lambda: (
                ActionChains(self.driver)
                .key_down(Keys.SHIFT)
                .send_keys(Keys.TAB)
                .key_up(Keys.SHIFT)
                .perform()
            )
        )

    async def focused(self) -> str:
        """The focused element's text (or its value, for a field)."""
        return str(
            await self.script(
                "const e = document.activeElement; return e.value || e.textContent || '';"
            )
        )

    async def rendered(self) -> None:
        """Wait until the portal has rendered its current route."""
        await self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "main[aria-busy='true']"))

    async def text(self, css: str = "body") -> str:
        return str(await self._run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).text))

    async def wait_text(self, needle: str, css: str = "main") -> None:
        await self.wait(lambda d: needle in d.find_element(By.CSS_SELECTOR, css).text)

    async def size(self, width: int, height: int) -> None:
        await self._run(self.driver.set_window_size, width, height)

    async def screenshot(self, name: str) -> None:
        """Save the page as `name`.png in every screenshot folder of this run."""
        png = await self._run(self.driver.get_screenshot_as_png)
        for folder in self._screenshots:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.png").write_bytes(png)


def _quiet(condition: Callable[[webdriver.Chrome], T], driver: webdriver.Chrome) -> T | None:
    try:
        return condition(driver)
    except WebDriverException:
        return None  # the page changed under us: look again
