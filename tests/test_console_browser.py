"""The operator console in a real browser: headless Chromium driven by selenium, three flows (logging in, linking an
unanswered question, an upload), with a screenshot of each page (POLICYBOT_SCREENSHOTS=DIR keeps them).

Skipped, with the reason, where Chromium, its driver or selenium is not installed
(Debian: apt-get install chromium chromium-driver; selenium is in the test extras).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from console_harness import PASSWORD, server  # noqa: F401 (server is a fixture)
from helpers import credit_code as _code

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait
    SELENIUM = True
except ImportError:  # pragma: no cover - depends on the machine
    SELENIUM = False

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER and SELENIUM),
    reason="browser tests need chromium, chromedriver (Debian: apt-get install chromium chromium-driver) and selenium "
           "(pip install -e '.[test]')")

TAUGHT = "企业搬迁到别的城市了称号还有效吗"


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1280,1000", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.implicitly_wait(10)  # an element of the next page is waited for, not looked up on the old one
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("POLICYBOT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(driver, name: str) -> None:
        """The whole page, not only the window (Chromium's DevTools protocol)."""
        import base64
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}})
        (folder / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
    return take


def _login(driver, server, password: str = PASSWORD) -> None:
    driver.get(server.url + "/admin/")  # not logged in: sent to the login form
    assert "/admin/login" in driver.current_url
    driver.find_element(By.NAME, "username").send_keys("alice")
    driver.find_element(By.NAME, "password").send_keys(password)
    button = driver.find_element(By.CSS_SELECTOR, "form button[type=submit]")
    button.click()
    WebDriverWait(driver, 20).until(_gone(button))  # the answer to the POST has loaded


def _gone(element):
    """The element is no longer in the document. Chromium reports a node it has just dropped either as stale or,
    in a race with the new page, as "Node with given id does not belong to the document"."""
    def check(_driver) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:  # StaleElementReferenceException is one
            return True
        return False
    return check


def test_logging_in(server, browser, shots):
    server.seed_activity()
    _login(browser, server, "not the password")
    assert "用户名或密码错误" in browser.page_source
    shots(browser, "login-failed")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 20).until(EC.url_to_be(server.url + "/admin/"))
    assert "概览" in browser.title and "每日提问" in browser.page_source and "<svg" in browser.page_source
    cookie = browser.get_cookie("pb_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    shots(browser, "dashboard")
    browser.get(server.url + "/admin/measures")
    assert "威海市服务型制造示范企业认定管理办法" in browser.page_source
    shots(browser, "measures")
    browser.find_element(By.XPATH, "//button[text()='退出登录']").click()
    WebDriverWait(browser, 20).until(EC.url_contains("/admin/login"))
    browser.get(server.url + "/admin/unanswered")
    assert "/admin/login" in browser.current_url
    shots(browser, "login")


def test_linking_an_unanswered_question(server, browser, shots):
    server.ask(TAUGHT)
    server.ask("威海申报需要什么条件？", user="u2")
    server.press("fb:-:1", user="u2")
    server.ask("没提到材料", user="u2")
    _login(browser, server)
    WebDriverWait(browser, 20).until(EC.url_to_be(server.url + "/admin/"))
    browser.get(server.url + "/admin/unanswered")
    assert TAUGHT in browser.page_source and "没提到材料" in browser.page_source
    shots(browser, "unanswered")
    row = browser.find_element(By.XPATH, f"//td[text()='{TAUGHT}']/..")
    row.find_element(By.LINK_TEXT, "关联条文…").click()
    search = browser.find_element(By.NAME, "q")
    search.clear()
    search.send_keys("更名 备案")
    browser.find_element(By.XPATH, "//button[text()='搜索']").click()
    WebDriverWait(browser, 20).until(EC.url_contains("q="))
    shots(browser, "link")
    target = browser.find_element(
        By.XPATH, "//strong[text()='《威海市服务型制造示范企业认定管理办法》第二十一条']/following-sibling::form//button")
    target.click()
    WebDriverWait(browser, 20).until(EC.url_contains("taught="))
    assert "已保存" in browser.page_source or "已生效" in browser.page_source
    server.rebuilt()
    browser.refresh()
    assert "已生效" in browser.page_source and "第二十一条" in browser.page_source
    shots(browser, "unanswered-after")
    assert "第二十一条" in server.ask(TAUGHT, user="u3")[0].text


def test_an_upload(server, browser, shots, tmp_path):
    csv_file = tmp_path / "获评企业.csv"
    csv_file.write_text("企业名称,统一社会信用代码,城市,授牌日期,渠道,用户ID\n"
                        f"威海甲机械有限公司,{_code(1)},荣成市,2024-06-01,wecom,zhangsan\n"
                        f"包头乙稀土有限公司,{_code(2)},包头,2025-01-10,,\n"
                        "丙公司,91370000123456789X,威海,2024-06-01,,\n", encoding="utf-8")
    _login(browser, server)
    WebDriverWait(browser, 20).until(EC.url_to_be(server.url + "/admin/"))
    browser.get(server.url + "/admin/subscriptions")
    shots(browser, "subscriptions-empty")
    browser.find_element(By.NAME, "file").send_keys(str(csv_file))
    browser.find_element(By.XPATH, "//button[text()='上传并导入']").click()
    WebDriverWait(browser, 20).until(EC.presence_of_element_located((By.CLASS_NAME, "flash")))
    shots(browser, "subscriptions-uploaded")
    page = browser.page_source
    assert "新增 2 家" in page and "拒收 1 行" in page and "第4行" in page and "统一社会信用代码" in page
    assert "威海甲机械有限公司" in page and "办法到期" in page and "无联系方式" in page
    # a pending claim of the uploaded record, approved from the page
    server.call(lambda: server.store.add_claim(_code(2), "wecom", "wangwu", claimed_name="包头乙稀土"))
    browser.get(server.url + "/admin/subscriptions")
    assert "包头乙稀土" in browser.page_source
    shots(browser, "subscriptions-claim")
    browser.find_element(By.XPATH, "//button[@value='approve']").click()
    WebDriverWait(browser, 20).until(EC.url_contains("#claims"))
    assert "没有待审核的认领申请" in browser.page_source and "企业微信：wangwu" in browser.page_source
