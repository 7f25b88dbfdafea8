"""End to end in headless Chromium: the chat page, the live app and real RQ workers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.conftest import _missing
from tests.helpers import worker_processes
from translations import text

# End to end, the same on either database: the database tests cover PostgreSQL.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--window-size=360,740",
)  # fmt: skip
# Headless Chromium will not make a window narrower than 500 px, so the phone's
# viewport is emulated; the window size only sets the height.
PHONE = {"width": 360, "height": 740, "pixelRatio": 1}
REPLY_TIMEOUT = 20
REPLIES = (
    "return [...document.querySelectorAll('.message.out')].map(m => m.textContent)"
)


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve `app` on a free local port, with one worker process answering."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with worker_processes(app, 1):
        yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """A headless Chromium the size of a phone, on a fresh profile."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            _missing(f"{path} is not installed; install Debian's chromium-driver")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": PHONE})
    service = Service(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()


def say(driver: WebDriver, message: str) -> None:
    driver.find_element(By.ID, "text").send_keys(message, Keys.ENTER)


def wait_for_reply(
    driver: WebDriver, matches: Callable[[str], bool], after: int = 0
) -> str:
    """Wait for a reply bubble, past the first `after`, that `matches` accepts."""

    def found(driver: WebDriver) -> str | None:
        replies = driver.execute_script(REPLIES)[after:]
        return next((reply for reply in replies if matches(reply)), None)

    return WebDriverWait(driver, REPLY_TIMEOUT).until(found)


def test_web_chat_on_a_phone_chooses_language_and_gets_welcome(
    browser, live_url, tmp_path
):
    browser.get(live_url)

    say(browser, "Hei")
    wait_for_reply(browser, lambda reply: "1 Suomi" in reply)
    say(browser, "3")
    wait_for_reply(browser, lambda reply: reply.startswith("Welcome!"))

    # A phone widens its viewport to fit wide content, so innerWidth must stay 360.
    width, scroll_width = browser.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth]"
    )
    assert width == PHONE["width"] and scroll_width <= width
    assert browser.find_element(By.ID, "text").is_displayed()
    assert browser.find_element(By.ID, "send").is_displayed()
    screenshot = tmp_path / "chat.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_web_chat_switches_to_right_to_left_for_arabic(browser, live_url):
    browser.get(live_url)
    say(browser, "Hei")
    wait_for_reply(browser, lambda reply: "6 العربية" in reply)
    menu_count = len(browser.execute_script(REPLIES))

    say(browser, "6")
    question = text("interview.municipality", "ar")
    wait_for_reply(browser, lambda reply: question in reply, after=menu_count)

    log_dir = browser.execute_script("return document.getElementById('log').dir")
    assert log_dir == "rtl"
    assert browser.execute_script("return document.documentElement.lang") == "ar"
    log = browser.find_element(By.ID, "log").rect
    reply = browser.find_elements(By.CSS_SELECTOR, ".message.out")[-1].rect
    left_gap = reply["x"] - log["x"]
    right_gap = log["x"] + log["width"] - reply["x"] - reply["width"]
    assert right_gap < left_gap, "in Arabic, Polku's replies start on the right"


@pytest.fixture
def case_url(app: Flask, tmp_path: Path) -> Iterator[str]:
    """The live app with a counsellor account and Finnish -> Ukrainian packages,
    installed before its worker process starts (as an operator would)."""
    from bot.accounts import new_account, save_account
    from tests.argos_packages import build_package
    from translations.argos import install_package

    packages = app.config["POLKU"].packages_dir
    install_package(build_package(tmp_path, "fi", "en", {"kokki": "cook"}), packages)
    install_package(build_package(tmp_path, "en", "uk", {"cook": "кухар"}), packages)
    account = new_account("anna", "Anna Asiantuntija", ["juva"], COUNSELLOR_PASSWORD)
    save_account(app.config["POLKU"].accounts, account)
    with serving(app) as url:
        yield url


COUNSELLOR_PASSWORD = "oikea hevonen paristo niitti"


def shown(driver: WebDriver, element_id: str, matches: Callable[[str], bool]) -> None:
    """Wait, across the page loads a form causes, until an element's text fits."""

    def fits(driver: WebDriver) -> bool:
        found = driver.find_elements(By.ID, element_id)
        try:
            return bool(found) and matches(found[0].text)
        except StaleElementReferenceException:
            return False

    WebDriverWait(driver, REPLY_TIMEOUT).until(fits)


def test_a_counsellor_opens_takes_and_answers_a_case_in_finnish(
    app, browser, case_url, twilio
):
    from sqlalchemy import select

    from bot.db import get_db
    from bot.models import Handoff
    from tests.factories import CLIENT_NUMBER, message_params, post_signed
    from tests.helpers import wait_for

    # A Ukrainian client in Juva writes over SMS and asks for a person.
    sms = app.test_client()
    for body in [
        "Привіт",
        "4",
        "3",
        "35",
        "1",
        "3/2025",
        "1",
        "Олена, кухар",
        "людина",
    ]:
        post_signed(sms, "/twilio/messages", message_params(Body=body))

    def handed_off() -> str | None:
        with get_db(app).session() as session:
            handoff = session.scalars(select(Handoff)).first()
            return handoff.reference if handoff and handoff.sent_at else None

    reference = wait_for(handed_off, timeout=60)

    browser.get(f"{case_url}/counsellor/")
    browser.find_element(By.ID, "username").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(COUNSELLOR_PASSWORD, Keys.ENTER)
    WebDriverWait(browser, REPLY_TIMEOUT).until(
        lambda driver: driver.find_elements(By.LINK_TEXT, reference)
    )[0].click()
    shown(browser, "taken", lambda taken: bool(taken))
    page = browser.find_element(By.TAG_NAME, "main").text
    assert CLIENT_NUMBER in page and "Олена" in page
    browser.find_element(By.ID, "take").click()
    shown(browser, "taken", lambda taken: taken == "anna")

    reply = "Hei! Etsitään sinulle kokki paikka Juvalta."
    browser.find_element(By.ID, "reply").send_keys(reply)
    browser.find_element(By.ID, "send-reply").click()
    shown(browser, "replies", lambda replies: reply in replies)

    def answered() -> str | None:
        last = twilio.bodies_to(CLIENT_NUMBER)[-1]
        return last if last.startswith("Повідомлення від вашого консультанта") else None

    assert "кухар" in wait_for(answered, timeout=60)
