"""The review page (utils/grading/review.py) in Chromium: scoring by keyboard only, identical answers grouped, a
rubric item created, applied and edited, every score kept across a reload, hostile answers shown as text, no
serious axe violation. Screenshots go to _build/screenshots/review*.png.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route

from browser_tests.pages import AXE_JS, AXE_RUN_JS, AXE_TAGS, SCREENSHOTS
from tests.test_grading_review import SOLUTIONS, W1, W2, graded_folder, scores
from utils.grading.review import ReviewServer

HOSTILE = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2"> rows stay random'
W1_SCORES = ["1", "0.5", "0", "0.75", "1", "0.25", "0.5", "1"]  # 8 groups: s00-s02 wrote the same
W2_SCORES = ["0", "1", "0.5", "1", "0.25", "0.75", "1", "0", "0.5", "1"]


W1_ANSWERS = [
    "Raising min_freq makes the vocabulary and the embedding table smaller, but more tokens become [UNK]. A word "
    "seen once gets almost no updates, so its vector stays random.",
    "A higher min_freq gives a smaller table and faster training; we lose the meaning of rare words, which all "
    "turn into [UNK].",
    "Raising min_freq makes the vocabulary and the embedding table smaller, but more tokens become [UNK]. A word "
    "seen once gets hardly any updates, so its vector stays random.",
    "You gain memory. You lose words.",
    "Rare words are noise; removing them helps the model generalise because their vectors are barely trained.",
    "The vocabulary shrinks, so there are fewer parameters, but unknown words lose their information. A word seen "
    "once would be updated once or twice only.",
    "I think a bigger min_freq makes the model more accurate on every text.",
    "Smaller vocabulary = smaller embedding matrix; the price is more [UNK] tokens. Singletons barely move from "
    "their random initialisation, so they add noise.",
]
W2_ANSWERS = [
    "Their rows never get a gradient, so they keep their random initial values.",
    "They are never looked up during training, so nothing updates them; at test time they add random noise.",
    "The vectors of test-only words stay random: the model learns nothing about them.",
    "They get trained like the other words.",
    "Their gradient is zero in every batch, so the optimiser leaves them alone and they stay as initialised.",
    "Nothing happens to them; at test time they contribute noise instead of meaning, like a random [UNK].",
    "The model overfits to them.",
    "Rows are only updated when used. Test words are never used in training, so their rows are random at test time.",
    "They would leak test information into training.",
    HOSTILE,
]


def class_answers() -> dict[str, dict[str, str]]:
    """Ten submissions: three write the same W1 answer (spaced and cased differently), one a W2 answer of markup."""
    w1 = [W1_ANSWERS[0], W1_ANSWERS[0].upper(), "  " + W1_ANSWERS[0].replace(" ", "\n ")] + W1_ANSWERS[1:]
    return {f"s{i:02}": {W1: w1[i], W2: W2_ANSWERS[i]} for i in range(10)}


def groups(server: ReviewServer, question: str) -> list[list[str]]:
    """The question's groups of submissions in the order the page shows them."""
    state = server.review.state()
    return [g["members"] for q in state["questions"] if q["id"] == question for g in q["groups"]]


@pytest.fixture()
def review(tmp_path: Path) -> Iterator[ReviewServer]:
    server = ReviewServer(graded_folder(tmp_path / "out", class_answers()), SOLUTIONS)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh desktop context that may reach nothing but 127.0.0.1 (every other request is aborted and kept)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    context.outside = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith("http://127.0.0.1:"):
            route.continue_()
        else:
            context.outside.append(route.request.url)
            route.abort()
    context.route("**/*", only_local)
    yield context
    context.close()


def open_page(context: BrowserContext, review: ReviewServer) -> Page:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.goto(review.url)
    page.wait_for_selector("#cards .card")
    return page


def wait_scored(page: Page, count: int, total: int = 10) -> None:
    page.wait_for_function("text => document.getElementById('progress').textContent.startsWith(text)",
                           arg=f"{count} of {total} scored")


def type_scores(page: Page, values: list[str], sizes: list[int]) -> None:
    """Score the question's answers in order with the keyboard: s, then a score and Enter for each."""
    page.keyboard.press("s")
    done = 0
    for value, size in zip(values, sizes, strict=True):
        page.keyboard.type(value)
        page.keyboard.press("Enter")
        done += size
        wait_scored(page, done)
    page.keyboard.press("Escape")


def shown_scores(page: Page) -> list[str]:
    """The score of every answer of the question, as the list view shows them."""
    if page.get_attribute("#view", "aria-pressed") != "true":
        page.keyboard.press("l")
    return page.locator("#cards output").all_inner_texts()


def test_twenty_answers_of_two_questions_scored_by_keyboard_and_kept_after_a_reload(context, review):
    page = open_page(context, review)
    first = page.locator(".card.current")
    assert "3 identical answers, scored together" in first.inner_text()
    assert "names hidden" in first.inner_text() and "s00" not in page.inner_text("main")  # anonymous by default
    page.keyboard.press("a")
    assert "s00, s01, s02" in page.inner_text(".card.current")
    page.keyboard.press("a")
    assert "Written question W1" in page.inner_text("#prompt")
    type_scores(page, W1_SCORES, [3] + [1] * 7)
    page.keyboard.press("]")
    assert "Written question W2" in page.inner_text("#prompt")
    type_scores(page, W2_SCORES, [1] * 10)
    page.screenshot(path=str(SCREENSHOTS / "review.png"))
    folder = review.review.folder
    w1 = groups(review, W1)
    assert w1[0] == ["s00", "s01", "s02"] and w1[1] == ["s04"]  # the nearly identical answer comes next
    assert scores(folder, W1) == {name: score for group, score in zip(w1, W1_SCORES, strict=True) for name in group}
    assert scores(folder, W2) == {name: score for [name], score in zip(groups(review, W2), W2_SCORES, strict=True)}
    on_page = shown_scores(page)
    page.reload()
    page.wait_for_selector("#cards .card")
    page.keyboard.press("]")
    assert shown_scores(page) == on_page and all(" / 1" in text for text in on_page)
    page.keyboard.press("[")
    assert [text.split(" /")[0] for text in shown_scores(page)] == W1_SCORES
    assert page.inner_text("#progress").startswith("10 of 10 scored (all questions: 20 of 20)")
    assert not page.errors and not context.outside


def test_a_rubric_item_created_applied_and_edited_rescores_every_answer_that_used_it(context, review):
    page = open_page(context, review)
    page.keyboard.press("n")
    page.keyboard.type("names the [UNK] vector")
    page.keyboard.press("Tab")
    page.keyboard.type("0.25")
    page.keyboard.press("Enter")
    page.wait_for_selector("#rubric li")
    page.keyboard.press("1")  # on the group of three
    wait_scored(page, 3)
    page.keyboard.press("j")
    page.keyboard.press("s")
    page.keyboard.type("0.5")
    page.keyboard.press("Enter")
    wait_scored(page, 4)
    page.keyboard.press("Escape")
    page.keyboard.press("k")
    page.keyboard.press("1")
    page.wait_for_function("() => document.querySelector('.card.current output').textContent.startsWith('0.75')")
    folder = review.review.folder
    assert [scores(folder)[s] for s in ("s00", "s01", "s02", "s04", "s03")] == ["0.25"] * 3 + ["0.75", ""]
    page.get_by_role("button", name="Edit item 1").click()
    page.fill("#item-points", "0.75")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.card.current output').textContent.startsWith('1 / 1')")
    assert "clamped from 1.25 to 1" in page.inner_text(".card.current")
    assert [scores(folder)[s] for s in ("s00", "s01", "s02", "s04", "s03")] == ["0.75"] * 3 + ["1", ""]
    assert shown_scores(page)[:2] == ["0.75 / 1 (typed 0, items +0.75)",
                                      "1 / 1 (typed 0.5, items +0.75) clamped from 1.25 to 1"]
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "review-rubric.png"))  # book/assets/review-page.png is a copy
    assert not page.errors and not context.outside


def test_markup_in_an_answer_is_shown_as_text_and_runs_nothing(context, review):
    page = open_page(context, review)
    page.keyboard.press("]")
    page.keyboard.press("l")
    hostile = page.locator("pre.answer", has_text="window.pwned")
    assert hostile.inner_text() == HOSTILE
    assert page.locator("#cards img, #cards script").count() == 0
    assert page.evaluate("() => window.pwned") is None and not context.outside
    hostile.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "review-markup.png"))


def test_the_page_and_the_similarity_tab_have_no_serious_accessibility_violation(browser, review):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)  # to inject axe
    try:
        page = open_page(context, review)
        page.keyboard.press("n")  # the rubric form and the list view in use, with a focused field
        page.keyboard.type("names the padding row")
        page.keyboard.press("Escape")
        page.keyboard.press("l")
        for shot in ("review-list.png", "review-similarity.png"):
            page.add_script_tag(path=str(AXE_JS))
            violations = page.evaluate(AXE_RUN_JS, {"runOnly": {"type": "tag", "values": AXE_TAGS}})
            assert [v for v in violations if v["impact"] in ("serious", "critical")] == [], (page.url, violations)
            page.screenshot(path=str(SCREENSHOTS / shot))
            page.get_by_role("link", name="Similarity").click() if shot == "review-list.png" else None
    finally:
        context.close()
