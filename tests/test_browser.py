"""The app in a real browser: headless Chromium driven by Playwright.

Needs /usr/bin/chromium (Debian's package; `make test-slow` installs it as root).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import TOY_DOCS, TOY_QUERIES, skip_unless_required, write

from curator.services.ingest import ingest_path
from db import open_database
from db.session import sqlite_url

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAYLOAD_SCRIPT = "<script>window.__xss = 'script'</script> Payload passage one"
PAYLOAD_IMG = "<img src=x onerror=\"window.__xss = 'img'\"> Payload passage two"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(data_dir: Path, *options: str, project: str | None = None) -> Iterator[str]:
    """Run `curator serve` on a free port until the block ends; yields its URL."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "curator.cli",
            "--data-dir",
            str(data_dir),
            *(["--project", project] if project else []),
            "serve",
            *options,
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("curator serve exited early")
                if time.monotonic() > deadline:
                    pytest.fail("curator serve did not start within 90 s")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        server.wait(timeout=20)


PREMINED = [("ordinary text 3", "n3"), ("ordinary text 11", "n11"), ("ordinary text 25", "n25")]


@pytest.fixture(scope="module")
def app_server(tmp_path_factory, guide_model):
    """The app on 42 passages (two holding markup) and three queries mined beforehand;
    yields (URL, data folder)."""
    from conftest import add_queries

    from curator.services.mine import MineOptions, mine_candidates

    if not os.path.exists(CHROMIUM):
        skip_unless_required(
            "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        )
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    corpus = write(
        data_dir.parent / "corpus.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"_id": "xss-1", "title": "<b>bold title?</b>", "text": PAYLOAD_SCRIPT},
                {"_id": "xss-2", "title": "Images", "text": PAYLOAD_IMG},
                *(
                    {"_id": f"n{i}", "title": f"Note {i}", "text": f"ordinary text {i}"}
                    for i in range(40)
                ),
            ]
        ),
    )
    database = open_database(sqlite_url(data_dir / "curator.db"))
    ingest_path(database, "default", corpus)
    add_queries(database, "default", PREMINED)
    mine_candidates(database, "default", data_dir, MineOptions(top_n=8), guide=guide_model)
    database.dispose()
    with serving(data_dir) as url:
        yield url, data_dir


@pytest.fixture(scope="module")
def app_url(app_server):
    return app_server[0]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_passages_render_as_text_and_scripts_stay_inert(app_url, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(app_url)
    page.get_by_text("42 passages · page 1 of 2").wait_for(timeout=30_000)
    page.get_by_text("Payload passage one").first.wait_for()

    # the markup shows as characters, and no element was created from it
    body = page.inner_text("body")
    assert "<script>window.__xss = 'script'</script>" in body
    assert "<img src=x onerror=" in body
    assert page.evaluate("window.__xss") is None
    assert page.locator("table img").count() == 0
    assert page.locator("table b").count() == 0

    # clicking the row shows the whole passage, still as text
    page.locator("[role=gridcell]", has_text="Payload passage two").first.click()
    detail = page.get_by_label("Passage", exact=True)
    detail.wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('textarea')].some(t => t.value.includes('Payload'))"
    )
    assert PAYLOAD_IMG in detail.input_value()
    assert page.evaluate("window.__xss") is None and dialogs == []

    # search narrows the table
    search = page.get_by_label("Search passages (id, title or text)")
    search.fill("ordinary text 17")
    search.press("Enter")
    page.get_by_text("1 passage · page 1 of 1").wait_for(timeout=15_000)
    assert page.locator("[role=gridcell]", has_text="ordinary text 3").count() == 0
    page.screenshot(path=str(tmp_path / "passages.png"))
    page.close()


def test_generate_mine_and_rerank_buttons_run_the_pipeline(app_url, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(app_url)
    page.get_by_role("tab", name="Pipeline").click()
    page.get_by_text("Project status (counts per stage)").click()  # open the stage table
    sample = page.get_by_label("Sample (passages; 0 = all)")
    sample.fill("3")
    page.get_by_role("button", name="Generate", exact=True).click()
    # the progress bar shows in the result box (not in a box 0 px high) and moves on
    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + 120
    while "passages/min" not in page.inner_text("#generate-result"):
        assert time.monotonic() < deadline, "generation did not finish within 120 s"
        bar = page.evaluate(
            """() => {
            const box = document.querySelector('#generate-result');
            const bar = box && box.querySelector('.progress-level, .eta-bar, .progress-text');
            if (!bar) return null;
            const parts = box.querySelectorAll('.progress-text, .progress-level-inner');
            const text = [...parts].map(e => e.innerText).join(' ');
            return [bar.getBoundingClientRect().height, text];
            }"""
        )
        if bar:
            seen.append((bar[0], bar[1]))
        time.sleep(0.1)
    assert seen and max(h for h, _ in seen) > 0, seen
    assert len({t for _, t in seen if t}) >= 2, seen  # the text changes as it runs
    assert any("ETA " in t for _, t in seen), seen  # with the time left once one is done
    page.get_by_text("passages/min with local/gemma3-270m").wait_for(timeout=120_000)
    # the overview refreshes and counts both replies, parsed or not
    deadline = time.monotonic() + 30
    while True:
        counts = re.search(r"(\d+) queries \((\d+) parse failures", page.inner_text("body"))
        if counts and int(counts[1]) + int(counts[2]) == 3 + len(PREMINED):
            break
        assert time.monotonic() < deadline, counts and counts[0]
        time.sleep(0.5)
    rows = page.locator("[role=gridcell]", has_text="local/gemma3-270m")
    rows.first.wait_for(timeout=30_000)
    assert rows.count() == 3
    assert page.evaluate("window.__xss") is None

    # mine the generated queries with the packaged guide model
    page.get_by_role("button", name="Mine", exact=True).click()
    page.get_by_text(re.compile(r"^mined [0-3] queries: \d+ candidates")).wait_for(timeout=180_000)
    page.get_by_text("False-negative guard on all").wait_for()

    # rerank them with the local model (QL + guide, top 10)
    page.get_by_role("button", name="Rerank", exact=True).click()
    page.get_by_text(re.compile(r"^reranked \d+ queries \(\d+ pairs\)")).wait_for(timeout=180_000)
    assert page.evaluate("window.__xss") is None
    page.close()


def test_pipeline_page_guard_plot_follows_the_margin_and_ingest_takes_an_upload(
    app_url, browser, tmp_path
):
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(app_url)
    page.get_by_role("tab", name="Pipeline").click()
    summary = re.compile(r"The guard discards (\d+) of (\d+) candidates")
    page.get_by_text(summary).first.wait_for(timeout=30_000)
    # vega-embed drew the histogram
    page.locator("#guard-plot canvas, #guard-plot svg").first.wait_for(timeout=30_000)

    def discarded() -> int:
        return int(summary.search(page.inner_text("#guard-summary"))[1])

    before = discarded()
    number = page.locator("#relative-margin input[type=number]")
    number.fill("0.3")
    number.press("Enter")
    deadline = time.monotonic() + 30
    while discarded() <= before:
        assert time.monotonic() < deadline, "the summary did not follow the margin"
        time.sleep(0.3)

    # upload a small JSONL file with one bad record; skip it, store the rest
    rows = [json.dumps({"_id": f"up{i}", "text": f"uploaded text {i}"}) for i in range(3)]
    upload = write(tmp_path / "upload.jsonl", "\n".join([*rows, '{"_id": "bad"}']))
    page.locator("#corpus-upload input[type=file]").set_input_files(str(upload))
    page.get_by_text("upload.jsonl").first.wait_for(timeout=30_000)
    page.get_by_label("skip").check()
    page.get_by_role("button", name="Ingest", exact=True).click()
    page.get_by_text("upload.jsonl: 3 passages added").wait_for(timeout=60_000)
    page.locator("[role=gridcell]", has_text="missing (required)").first.wait_for()
    page.get_by_text("Project status (counts per stage)").click()  # open the stage table
    page.get_by_text(re.compile(r"^45 passages from")).first.wait_for(timeout=30_000)
    assert page.evaluate("window.__xss") is None
    page.close()


@pytest.fixture(scope="module")
def card_server(tmp_path_factory, guide_model):
    """The app on project ``p``: the toy corpus, eight queries mined (top 8) and reranked
    by the guide alone; yields (URL, data folder)."""
    from conftest import mine_small_project

    if not os.path.exists(CHROMIUM):
        skip_unless_required(
            "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        )
    root = tmp_path_factory.mktemp("card")
    database = open_database(sqlite_url(root / "data" / "curator.db"))
    mine_small_project(
        database, root, guide_model, TOY_DOCS, TOY_QUERIES, top_n=8, rerank_by_guide=True
    )
    database.dispose()
    with serving(root / "data", project="p") as url:
        yield url, root / "data"


def stored(data_dir: Path) -> list[tuple]:
    """Every judgment as (id, query, annotator, decision, retracted id, reason,
    {passage external id: label})."""
    from sqlalchemy import select

    from db.models import Annotator, Judgment, JudgmentPassage, Passage

    database = open_database(sqlite_url(data_dir / "curator.db"))
    with database.sessions() as session:
        labels: dict[int, dict[str, str]] = {}
        for judgment_id, external_id, label in session.execute(
            select(JudgmentPassage.judgment_id, Passage.external_id, JudgmentPassage.label).join(
                Passage, Passage.id == JudgmentPassage.passage_id
            )
        ):
            labels.setdefault(judgment_id, {})[external_id] = label
        rows = [
            (
                j.id,
                j.query_id,
                name,
                j.decision,
                j.retracts_judgment_id,
                j.reject_reason,
                labels.get(j.id, {}),
            )
            for j, name in session.execute(
                select(Judgment, Annotator.username)
                .join(Annotator, Annotator.id == Judgment.annotator_id)
                .order_by(Judgment.id)
            )
        ]
    database.dispose()
    return rows


def card(page) -> dict:
    """The card on the page: its query id and each row's passage id, key and mark."""
    page.locator("#annotate-card .cc-card[data-query]").first.wait_for(timeout=30_000)
    return page.evaluate(
        """() => {
        const c = document.querySelector('#annotate-card .cc-card');
        return {query: Number(c.dataset.query), rows: [...c.querySelectorAll('tr[data-pid]')]
                .map(r => ({pid: r.dataset.pid, key: r.dataset.key, mark: r.dataset.mark}))};
        }"""
    )


def annotate_page(browser, url: str):
    """A 1440x900 page on the Annotate tab: (the page, the card it opened on)."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url)
    page.get_by_role("tab", name="Annotate").click()
    return page, card(page)


def card_after(page, previous: int) -> dict:
    """The card that replaced the one of query ``previous`` (waits for it)."""
    page.wait_for_function(
        "q => (document.querySelector('#annotate-card .cc-card')?.dataset.query || q) !== q",
        arg=str(previous),
        timeout=30_000,
    )
    return card(page)


def marked(rows: list[dict]) -> dict[str, str]:
    return {r["pid"]: r["mark"] for r in rows if r["mark"]}


def saved(page, action: str, previous: str = "") -> str:
    """Waits for the confirmation line of a new ``action`` and returns it."""
    page.wait_for_function(
        """([action, previous]) => {
        const line = document.querySelector('#annotate-message')?.innerText || '';
        return line.includes(action) && line !== previous;
        }""",
        arg=[action, previous],
        timeout=30_000,
    )
    return page.inner_text("#annotate-message").strip()


def test_override_then_reject_then_undo_then_accept_each_stored(card_server, browser, tmp_path):
    """The sequence that broke with the old checkbox grids: after an override, the next
    actions must work and store exactly what the card showed."""
    url, data_dir = card_server
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.get_by_role("tab", name="Annotate").click()
    first = card(page)  # opens on the first card without a click on Load next
    page.get_by_text("8 of 8").wait_for(timeout=30_000)
    assert first["rows"][0]["key"] == "1" and len(first["rows"]) >= 5
    before = marked(first["rows"])
    assert "positive" in before.values()  # the proposal is pre-filled
    on_screen = page.evaluate(
        """() => [...document.querySelectorAll('#annotate-card tr[data-pid]')].filter(r => {
            const box = r.getBoundingClientRect();
            return box.top >= 0 && box.bottom <= window.innerHeight; }).length"""
    )
    assert on_screen >= 5
    assert page.locator("#accept-button").bounding_box()["y"] < 300  # the action bar is on top

    # override by mouse: add row 3 as a positive, turn the first proposed negative into a
    # false negative (mark chip: none -> pos -> neg -> false neg)
    row3 = first["rows"][2]
    assert not row3["mark"]
    page.locator('#annotate-card tr[data-key="3"] .cc-mark').click()
    negative = next(r for r in first["rows"] if r["mark"] == "negative")
    page.locator(f'#annotate-card tr[data-key="{negative["key"]}"] .cc-mark').click()
    expected = {**before, row3["pid"]: "positive", negative["pid"]: "false_negative"}
    page.get_by_role("button", name="Save marks (Enter)").click()
    line = saved(page, "(override)")
    rows = stored(data_dir)
    assert [r[1:5] for r in rows] == [(first["query"], "annotator", "override", None)]
    assert rows[-1][6] == expected

    # reject by key: the next card, nothing left over from the first
    second = card(page)
    assert second["query"] != first["query"] and "7 of 7" in page.inner_text("#queue-position")
    page.keyboard.press("r")
    line = saved(page, "(reject)", line)
    rows = stored(data_dir)
    assert rows[-1][1:7] == (second["query"], "annotator", "reject", None, "unanswerable", {})

    # undo: a retract naming the rejection, and its query is back
    page.keyboard.press("u")
    line = saved(page, "undone", line)
    rows = stored(data_dir)
    assert rows[-1][3:5] == ("retract", rows[-2][0]) and rows[-1][1] == second["query"]
    back = card(page)
    assert back["query"] == second["query"]

    # accept by key: the proposal as the card shows it
    page.keyboard.press("a")
    saved(page, "(accept)", line)
    rows = stored(data_dir)
    assert rows[-1][1:4] == (second["query"], "annotator", "accept")
    assert rows[-1][6] == marked(back["rows"])
    assert len(rows) == 4
    assert page.locator(".toast-body").count() == 0, page.inner_text("body")
    assert not [e for e in errors if "not in the list of choices" in e]
    page.screenshot(path=str(tmp_path / "card.png"))
    page.close()


def test_override_by_keys_only(card_server, browser):
    """Digits mark positives, Shift+digit negatives, f then a digit a false negative, Enter
    saves: no mouse at all."""
    url, data_dir = card_server
    page, shown = annotate_page(browser, url)
    before = len(stored(data_dir))
    rows = {r["key"]: r for r in shown["rows"]}
    expected = marked(shown["rows"])
    for key, mark in (("4", "positive"), ("5", "negative"), ("6", "false_negative")):
        if expected.get(rows[key]["pid"]) == mark:
            expected.pop(rows[key]["pid"])
        else:
            expected[rows[key]["pid"]] = mark
    for key in ("Digit4", "Shift+Digit5", "f", "Digit6", "Enter"):
        page.keyboard.press(key)
    saved(page, "(override)")
    rows_stored = stored(data_dir)
    assert len(rows_stored) == before + 1
    assert rows_stored[-1][1:4] == (shown["query"], "annotator", "override")
    assert rows_stored[-1][6] == expected
    page.close()


def edited_queries(data_dir: Path) -> dict[int, str]:
    """judgment id -> the query text its annotator typed (judgments that fixed the query)."""
    from sqlalchemy import select

    from db.models import Judgment

    database = open_database(sqlite_url(data_dir / "curator.db"))
    with database.sessions() as session:
        rows = session.execute(
            select(Judgment.id, Judgment.edited_query).where(Judgment.edited_query.is_not(None))
        ).all()
    database.dispose()
    return dict(rows)


def test_a_query_fixed_by_keys_only_is_stored_and_the_next_card_takes_keys(card_server, browser):
    """q selects the query's text, typing replaces it (its letters judge nothing), Enter
    saves it with the marks; the focus leaves the field, so a then accepts the next card."""
    url, data_dir = card_server
    page, shown = annotate_page(browser, url)
    before = len(stored(data_dir))
    page.keyboard.press("q")
    page.keyboard.type("a better query 1 about cats")
    assert len(stored(data_dir)) == before
    page.keyboard.press("Enter")
    line = saved(page, "(")
    rows = stored(data_dir)
    assert len(rows) == before + 1 and rows[-1][1:3] == (shown["query"], "annotator")
    assert rows[-1][3] in ("accept", "override") and rows[-1][6] == marked(shown["rows"])
    assert edited_queries(data_dir)[rows[-1][0]] == "a better query 1 about cats"
    following = card_after(page, shown["query"])
    page.keyboard.press("a")
    line = saved(page, "(accept)", line)
    rows = stored(data_dir)
    assert len(rows) == before + 2 and rows[-1][1:4] == (following["query"], "annotator", "accept")
    # Esc puts the query back and leaves the field: the next key judges, without the text
    third = card_after(page, following["query"])
    box = page.locator("#query-box textarea, #query-box input").first
    original = box.input_value()
    page.keyboard.press("q")
    page.keyboard.type("not saved")
    page.keyboard.press("Escape")
    assert box.input_value() == original and len(stored(data_dir)) == before + 2
    page.keyboard.press("a")
    saved(page, "(accept)", line)
    rows = stored(data_dir)
    assert rows[-1][1:4] == (third["query"], "annotator", "accept")
    assert rows[-1][0] not in edited_queries(data_dir)
    page.close()


def edited_texts(data_dir: Path) -> dict[str, str]:
    """passage external id -> the edited text stored with a judgment."""
    from sqlalchemy import select

    from db.models import JudgmentPassage, Passage

    database = open_database(sqlite_url(data_dir / "curator.db"))
    with database.sessions() as session:
        rows = session.execute(
            select(Passage.external_id, JudgmentPassage.edited_text)
            .join(Passage, Passage.id == JudgmentPassage.passage_id)
            .where(JudgmentPassage.edited_text.is_not(None))
        ).all()
    database.dispose()
    return dict(rows)


def test_a_passage_edited_on_the_card_is_stored_with_the_accept(card_server, browser):
    """edit on a marked row, type the fixed text (keys typed there judge nothing), accept:
    the judgment keeps the edit; the passage's own text is unchanged."""
    url, data_dir = card_server
    page, shown = annotate_page(browser, url)
    before = len(stored(data_dir))
    row = next(r for r in shown["rows"] if r["mark"] == "positive")
    page.locator(f'#annotate-card tr[data-key="{row["key"]}"] .cc-edit').click()
    body = page.locator(f'#annotate-card tr[data-key="{row["key"]}"] .cc-body')
    body.press("Control+a")
    body.press_sequentially("a fixed passage 1")  # 'a' and '1' type, they do not judge
    assert len(stored(data_dir)) == before
    page.locator("#accept-button").click()
    saved(page, "(accept)")
    rows = stored(data_dir)
    assert len(rows) == before + 1 and rows[-1][1:4] == (shown["query"], "annotator", "accept")
    edits = edited_texts(data_dir)
    assert edits[row["pid"]].endswith("\na fixed passage 1"), edits
    page.close()


def test_keys_on_another_tab_or_in_a_text_field_store_nothing(card_server, browser):
    url, data_dir = card_server
    page, shown = annotate_page(browser, url)
    before = stored(data_dir)
    page.get_by_role("tab", name="Passages").click()
    page.get_by_text("page 1 of 1").wait_for(timeout=30_000)
    page.locator("body").click(position={"x": 5, "y": 5})
    for key in ("a", "1", "Enter", "r", "u", "s"):
        page.keyboard.press(key)
    # typing in the Annotate tab's query field types; it does not judge
    page.get_by_role("tab", name="Annotate").click()
    box = page.locator("#query-box textarea, #query-box input").first
    box.click()
    box.press("End")
    for key in ("a", "r", "u", "1"):
        box.press(key)
    time.sleep(2.0)  # time for a wrongly sent judgment to arrive
    assert stored(data_dir) == before
    assert box.input_value().endswith("aru1")
    assert card(page)["query"] == shown["query"]
    page.close()


@pytest.fixture(scope="module")
def login_url(tmp_path_factory, guide_model):
    """An app behind a login with one account (ann) and three mined queries."""
    from conftest import add_queries

    from curator.services.auth import set_password
    from curator.services.mine import MineOptions, mine_candidates

    if not os.path.exists(CHROMIUM):
        skip_unless_required(
            "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        )
    data_dir = tmp_path_factory.mktemp("login") / "data"
    corpus = write(
        data_dir.parent / "corpus.jsonl",
        "\n".join(
            json.dumps(r)
            for r in [
                {"_id": "tea", "title": "Tea", "text": "Tea is brewed from cured tea leaves."},
                {"_id": "mars", "title": "Mars", "text": "Mars is the fourth planet from the Sun."},
                {"_id": "oak", "title": "Oak", "text": "Oaks are trees that bear acorns."},
            ]
        ),
    )
    database = open_database(sqlite_url(data_dir / "curator.db"))
    ingest_path(database, "default", corpus)
    add_queries(
        database,
        "default",
        [("drink from leaves", "tea"), ("red planet", "mars"), ("trees with acorns", "oak")],
    )
    mine_candidates(database, "default", data_dir, MineOptions(top_n=3), guide=guide_model)
    set_password(database, "ann", "ann-password")
    database.dispose()
    with serving(data_dir, "--login") as url:
        yield url, data_dir


def test_login_then_judgments_are_stored_under_the_logged_in_annotator(login_url, browser):
    from sqlalchemy import select

    from db.models import Annotator, Judgment

    url, data_dir = login_url
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    page.goto(url)
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("wrong-password")
    page.get_by_role("button", name="Login").click()
    page.get_by_text("Incorrect", exact=False).wait_for(timeout=15_000)
    page.get_by_label("username").fill("ann")  # the failed attempt cleared it
    page.get_by_label("password").fill("ann-password")
    page.get_by_role("button", name="Login").click()
    page.get_by_role("tab", name="Annotate").click(timeout=30_000)
    annotator = page.get_by_label("Annotator")
    page.wait_for_function(
        "() => [...document.querySelectorAll('input,textarea')].some(e => e.value === 'ann')"
    )
    assert annotator.is_disabled() or not annotator.is_editable()
    page.get_by_role("button", name="Load next").click()
    header = re.compile(r"^Query #(\d+)")
    page.get_by_text(header).wait_for(timeout=30_000)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")  # keyboard
    saved = re.compile(r"Saved judgment #(\d+) \((accept|reject)\)")
    page.get_by_text(saved).wait_for(timeout=30_000)
    first = page.get_by_text(saved).inner_text()
    page.get_by_role("button", name="Accept (a)").click()  # mouse
    page.wait_for_function(
        "first => document.body.innerText.includes('Saved judgment') && "
        "!document.body.innerText.includes(first)",
        arg=first,
        timeout=30_000,
    )
    second = page.get_by_text(saved).inner_text()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("r")  # keyboard
    page.get_by_text(re.compile(r"Saved judgment #\d+ \(reject\)")).wait_for(timeout=30_000)
    assert first != second
    # reload: still logged in, and the judged-by-me queue starts with a judged query
    page.reload()
    page.get_by_role("tab", name="Annotate").click(timeout=30_000)
    page.get_by_label("Queue").click()
    page.get_by_role("option", name="judged_by_me").click()
    page.get_by_text(header).wait_for(timeout=30_000)
    page.close()
    database = open_database(sqlite_url(data_dir / "curator.db"))
    with database.sessions() as session:
        who = session.execute(
            select(Annotator.username, Judgment.decision).join(
                Judgment, Judgment.annotator_id == Annotator.id
            )
        ).all()
    database.dispose()
    assert [tuple(r) for r in who] == [("ann", "accept"), ("ann", "accept"), ("ann", "reject")]


@pytest.fixture(scope="module")
def judged_url(tmp_path_factory, guide_model):
    """The app on a small project whose eight queries are all judged (accepted)."""
    from conftest import mine_small_project

    from curator.services.annotate import record_judgment

    if not os.path.exists(CHROMIUM):
        skip_unless_required(
            "needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
        )
    root = tmp_path_factory.mktemp("finetune")
    database = open_database(sqlite_url(root / "data" / "curator.db"))
    ids = mine_small_project(database, root, guide_model, TOY_DOCS[:8], TOY_QUERIES, top_n=8)
    for query_id in ids:
        record_judgment(database, query_id, "ann", "accept")
    database.dispose()
    with serving(root / "data", project="p") as url:
        yield url


def test_fine_tune_button_trains_and_shows_the_comparison(judged_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(judged_url)
    page.get_by_role("tab", name="Fine-tune").click(timeout=30_000)
    page.get_by_label("Batch size").fill("4")
    page.get_by_label("Max tokens").fill("64")
    page.locator("#finetune-button").click()
    table = page.locator("#metrics-table")
    table.get_by_text("hybrid").wait_for(timeout=240_000)
    for system in ("BM25", "base", "fine-tuned"):
        assert table.get_by_text(system, exact=True).count() >= 1
    status = page.locator("#finetune-status textarea").input_value()
    assert re.search(r"training run \d+: \d+ rows, loss", status), status
    page.get_by_label("Type a query").fill("a planet near the sun")
    page.locator("#compare-button").click()
    page.wait_for_function(
        "() => document.querySelector('#compare-message textarea')?.value"
        ".startsWith('Query: a planet near the sun')",
        timeout=60_000,
    )
    # three ranking columns, each listing passages with their ids
    page.locator("[role=gridcell]", has_text="Mars is the fourth planet").nth(2).wait_for(
        timeout=30_000
    )
    cells = page.locator("[role=gridcell]").all_inner_texts()
    assert sum(c.strip() == "mars" for c in cells) >= 3, [c for c in cells if "mars" in c]
    note = page.locator("#heldout-note")
    assert re.search(r"Metrics from \d+ held-out queries", note.inner_text())
    # fine-tuned vs base, query by query, with the bootstrap interval
    wins = re.search(r"(\d+) wins, (\d+) ties, (\d+) losses of (\d+)", note.inner_text())
    assert wins and sum(map(int, wins.groups()[:3])) == int(wins[4]), note.inner_text()
    assert "paired bootstrap 95% interval" in note.inner_text()
    # the stage table counts the run
    page.get_by_text("Project status (counts per stage)").click()
    page.locator("#project-status").get_by_text("1 training runs").wait_for(timeout=30_000)
    # a reload shows the last run, its metrics and the held-out count from the database
    page.reload()
    page.get_by_role("tab", name="Fine-tune").click(timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('#finetune-status textarea')?.value"
        ".startsWith('training run ')",
        timeout=30_000,
    )
    assert "(done, mnrl)" in page.locator("#finetune-status textarea").input_value()
    page.locator("#metrics-table").get_by_text("hybrid").wait_for(timeout=30_000)
    assert "fewer than 30" in page.locator("#heldout-note").inner_text()
    assert wins[0] in page.locator("#heldout-note").inner_text()  # stored with the run
    page.close()


def test_export_tab_offers_a_zip_that_holds_the_dataset(judged_url, browser, tmp_path):
    import zipfile

    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(judged_url)
    page.get_by_role("tab", name="Export").click(timeout=30_000)
    page.get_by_role("button", name="Export", exact=True).click()
    link = page.locator("a[download]").first
    link.wait_for(timeout=60_000)
    with page.expect_download() as download:
        link.click()
    archive = tmp_path / "export.zip"
    download.value.save_as(archive)
    page.close()
    names = zipfile.ZipFile(archive).namelist()
    assert any(n.endswith("/manifest.json") for n in names)
    assert any(n.endswith(".parquet") for n in names)
