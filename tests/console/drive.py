"""Drive eddy's web console in a real headless browser (Debian chromium + chromedriver,
through Selenium): the page loads, live numbers change after an INSERT made over the
Postgres wire, the query box runs a SELECT and refuses anything else.

usage: drive.py HTTP_PORT PG_PORT [SCREENSHOT_PATH]
"""
import sys
import time

import psycopg
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

http_port, pg_port = sys.argv[1], sys.argv[2]
screenshot = sys.argv[3] if len(sys.argv) > 3 else None
base = f"http://127.0.0.1:{http_port}"

pg = psycopg.connect(f"host=127.0.0.1 port={pg_port} user=eddy dbname=eddy", autocommit=True)
pg.execute("CREATE STREAM clicks (page TEXT, ms INT)")
pg.execute(
    "CREATE MATERIALIZED VIEW per_page AS SELECT page, count(*) AS n, max(ms) AS slowest "
    "FROM clicks GROUP BY page"
)

options = webdriver.ChromeOptions()
for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,800"]:
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 15)


def cell(relation, cls):
    return driver.find_element(
        By.CSS_SELECTOR, f'#relations tr[data-relation="{relation}"] td.{cls}'
    ).text


def wait_cell(relation, cls, want):
    def check(_):
        try:
            return cell(relation, cls) == want
        except Exception:
            return False
    try:
        wait.until(check)
    except Exception:
        raise AssertionError(f"{relation}.{cls}: wanted {want!r}, page shows {cell(relation, cls)!r}")


def run_query(sql):
    box = driver.find_element(By.ID, "sql")
    box.clear()
    box.send_keys(sql)
    driver.find_element(By.ID, "run").click()


try:
    driver.get(base + "/")
    assert driver.title == "eddy console", driver.title
    wait_cell("clicks", "rows_in", "0")
    wait_cell("per_page", "rows", "0")
    row = driver.find_element(By.CSS_SELECTOR, '#relations tr[data-relation="per_page"]').text
    assert "clicks" in row and "count(*)" in row, row  # reads clicks; its SQL is shown

    # Live: an INSERT over the wire shows up without reloading the page.
    pg.execute("INSERT INTO clicks VALUES ('/a', 10), ('/b', 20), ('/a', 30)")
    wait_cell("clicks", "rows_in", "3")
    wait_cell("per_page", "rows", "2")
    pg.execute("INSERT INTO clicks VALUES ('/c', 5)")
    wait_cell("clicks", "rows_in", "4")
    wait_cell("per_page", "rows", "3")

    # The query box runs a SELECT...
    run_query("SELECT page, n, slowest FROM per_page ORDER BY page")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#result tbody tr")) == 3)
    rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#result tbody tr")]
    assert rows == ["/a 2 30", "/b 1 20", "/c 1 5"], rows

    # ... and refuses anything that could change the database.
    for sql, message in [
        ("INSERT INTO clicks VALUES ('/x', 1)", "read-only"),
        ("DROP MATERIALIZED VIEW per_page", "read-only"),
        ("SELECT 1; DELETE FROM clicks", "one statement"),
    ]:
        run_query(sql)
        wait.until(lambda d: message in d.find_element(By.ID, "error").text)
    assert pg.execute("SELECT count(*) FROM clicks").fetchone()[0] == 4
    assert pg.execute("SELECT count(*) FROM per_page").fetchone()[0] == 3

    # A failing SELECT shows its error.
    run_query("SELECT * FROM no_such_relation")
    wait.until(lambda d: "42P01" in d.find_element(By.ID, "error").text)

    if screenshot:
        run_query("SELECT name, kind, rows_in, freshness_s FROM eddy_freshness ORDER BY name")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#result tbody tr")) == 2)
        time.sleep(2.5)  # a few refreshes, so the sparklines have points
        driver.save_screenshot(screenshot)
finally:
    driver.quit()
print("console ok")
