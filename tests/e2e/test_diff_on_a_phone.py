"""The diff on a Pixel 7 (412×915): one gutter, 44 code characters or more a line, long lines scrolling inside
their hunk (never the page), and a remembered "Wrap long lines" toggle that wraps at spaces, never inside a word."""

import pytest
from playwright.sync_api import expect

from tests.factories import commit_diff, finding, make_goal, make_step, open_request
from tests.support.browser import PIXEL_7, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROSE = (
    "# The invoice export writes one row per invoice with its number, its customer and its total, "
    "in that order, so that the accountants can import it without editing the columns by hand.\n"
)
SPACED = "WORDS = '" + " ".join(["x"] * 150) + "'\n"
TOKEN = "URL = 'https://example.invalid/" + "a" * 160 + "'\n"

# The visual lines of a code cell, read character by character from where the browser put each one.
VISUAL_LINES = """(cell) => {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  const lines = [];
  let top = null, current = "";
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest(".sign, .visually-hidden")) continue;
    for (let i = 0; i < node.length; i++) {
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (rect && top !== null && rect.top > top + 2) { lines.push(current); current = ""; }
      if (rect && (top === null || rect.top > top + 2)) top = rect.top;
      current += node.data[i];
    }
  }
  lines.push(current);
  return lines;
}"""
# How many monospace characters fit in the code column: its inner width over one character's width.
CODE_COLUMN_CHARACTERS = """(cell) => {
  const style = getComputedStyle(cell);
  const probe = document.createElement("span");
  probe.textContent = "0".repeat(100);
  probe.style.cssText = "position:absolute;visibility:hidden;white-space:pre;font:inherit";
  cell.appendChild(probe);
  const one = probe.getBoundingClientRect().width / 100;
  probe.remove();
  const column = cell.parentElement.parentElement.parentElement.parentElement;  // the hunk's scroller
  const gutter = cell.parentElement.querySelector("td.lno").getBoundingClientRect().width;
  const inner = column.clientWidth - gutter - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return Math.floor(inner / one);
}"""


def page_scrolls_sideways(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def code_cell(page, text: str, within: str = "body"):
    return page.locator(f"{within} td.code").filter(has_text=text).first


@pytest.fixture
def long_lines_request(owner, git_repo):
    goal = make_goal(owner, git_repo, title="Document the invoice export")
    files = {
        "docs/export.py": PROSE + SPACED + TOKEN,
        "shop/a.py": "A = 1\n",
        "shop/b.py": "B = 2\n",
        "shop/later.py": PROSE.replace("accountants", "auditors"),  # the fourth file loads when opened (htmx)
    }
    diff = commit_diff(git_repo, files)
    return open_request(goal, step=make_step(goal, 1, diff), findings=[finding(reason="Wide docs change")])


@pytest.fixture
def pixel(browser):
    context = browser.new_context(**PIXEL_7)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_long_lines_scroll_inside_their_hunk_beside_one_gutter(live_url, pixel, long_lines_request, screenshots):
    page = pixel
    sign_in(page, live_url, "owner", "owner-pass-123")
    page.goto(f"{live_url}/approvals/{long_lines_request.pk}/")
    prose = code_cell(page, "The invoice export", "#file-0")
    expect(prose).to_be_visible()

    rows = page.locator("#file-0 tr.ln")
    assert rows.count() == 3
    assert page.locator("#file-0 tr.ln td.lno").count() == 3  # one gutter, not two
    assert page.locator("#file-0 tr.ln td.lno").all_inner_texts() == ["1", "2", "3"]

    characters = prose.evaluate(CODE_COLUMN_CHARACTERS)
    assert characters >= 44, characters
    assert len(prose.evaluate(VISUAL_LINES)) == 1  # not wrapped: one line, scrolled
    assert not page_scrolls_sideways(page)

    scroller = page.locator("#file-0 .hunk-scroll").first
    assert scroller.evaluate("(el) => el.scrollWidth > el.clientWidth + 100")
    gutter_left = page.locator("#file-0 td.lno").first.bounding_box()["x"]
    scroller.evaluate("(el) => { el.scrollLeft = 400; }")
    assert scroller.evaluate("(el) => el.scrollLeft") > 0
    assert page.evaluate("window.scrollX") == 0
    assert page.locator("#file-0 td.lno").first.bounding_box()["x"] == gutter_left  # the gutter stays in view
    page.locator("#file-0").scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "diff-scrolls-pixel7.png")


def test_the_wrap_toggle_wraps_at_spaces_is_remembered_and_follows_htmx_swaps(
    live_url, pixel, long_lines_request, screenshots
):
    page = pixel
    sign_in(page, live_url, "owner", "owner-pass-123")
    page.goto(f"{live_url}/approvals/{long_lines_request.pk}/")
    toggle = page.get_by_role("button", name="Wrap long lines")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")

    def check_wrapped(within: str, text: str) -> list[str]:
        lines = code_cell(page, text, within).evaluate(VISUAL_LINES)
        assert len(lines) >= 3, lines
        for before, after in zip(lines, lines[1:], strict=False):
            assert before[-1:].isspace() or after[:1].isspace(), (before, after)  # never inside a word
        return lines

    check_wrapped("#file-0", "The invoice export")
    spaced = check_wrapped("#file-0", "WORDS")
    assert len(spaced[0].rstrip()) >= 43, spaced[0]  # single-letter words fill the line: 44 characters a line
    # A word longer than the line stays whole and scrolls inside its hunk.
    word = TOKEN.split(" = ")[1].strip()
    assert code_cell(page, "example.invalid", "#file-0").evaluate(VISUAL_LINES)[-1] == word
    assert not page_scrolls_sideways(page)
    page.locator("#file-0").scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "diff-wrapped-pixel7.png")

    # A file htmx loads later wraps too, and the choice survives a reload.
    page.locator("#file-3 summary").click()
    expect(page.locator("#file-3 table.hunk")).to_have_count(1)
    check_wrapped("#file-3", "auditors")
    page.reload()
    expect(page.get_by_role("button", name="Wrap long lines")).to_have_attribute("aria-pressed", "true")
    check_wrapped("#file-0", "The invoice export")

    page.get_by_role("button", name="Wrap long lines").click()
    assert len(code_cell(page, "The invoice export", "#file-0").evaluate(VISUAL_LINES)) == 1
    assert not page_scrolls_sideways(page)
