"""``make site`` end to end: the static site is built from smoke-mode executed notebooks and a chapter page
is opened from disk in headless Chromium. Its title, a figure and a table must render, every internal
link of every page must resolve to a file of the site, and nothing may be loaded from the network.
Every in-page ``#`` link (the tables of contents) must lead to an id on its page, and heading ids keep Chinese
and code words. Chinese search: the index holds each chapter's title segmented by jieba, and, with the site
served over HTTP, typing a word of a chapter's title (过拟合 for 2.8.4) in the search box lists that chapter.
A screenshot goes to test-output/<test name>/.

The executed notebook is the copy ``tests/test_notebooks.py`` leaves in test-output/ when it ran before
this test (as in ``make test``), else the one ``make notebooks ARGS=--smoke`` leaves in build/notebooks/smoke/;
when neither exists the chapter is executed here in smoke mode.
Chromium and its driver come from Debian, as for tests/test_dashboard_browser.py.
"""
import html.parser
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from _helpers import ROOT, TEST_OUTPUT, chromium, http_server

CHAPTER = "2.8.3_train_val_test"  # a figure (the history plot) and a table (the first cell's) on one page
WAIT = 60

pytestmark = pytest.mark.slow  # builds the site from an executed notebook, opens it in Chromium
pytest.importorskip("mkdocs_jupyter", reason="the site extra is not installed: pip install -e \".[site]\"")


def executed_chapter(tmp_path) -> Path:
    """A folder holding CHAPTER executed in smoke mode: test_notebooks.py's copy, or one made now."""
    import nbformat

    name = f"{CHAPTER}.ipynb"
    copies = sorted(TEST_OUTPUT.glob(f"test_runs_headless_in_smoke_mode*/{name}"))
    copies.append(ROOT / "build" / "notebooks" / "smoke" / name)  # `make notebooks ARGS=--smoke`
    for copy in (c for c in copies if c.exists()):
        nb = nbformat.read(copy, as_version=4)
        if any(c.get("outputs") for c in nb.cells if c.cell_type == "code"):
            return copy.parent
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import run_notebooks
    finally:
        sys.path.pop(0)
    _, _, result = run_notebooks.run_one(str(ROOT / "notebooks" / name), "smoke", str(tmp_path / name))
    assert result == "ok", result
    return tmp_path


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    executed = executed_chapter(tmp / "executed")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_site.py"), "--executed", str(executed),
                           "--out", str(tmp / "site")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"notebooks/{CHAPTER}.ipynb" in done.stdout and "from " in done.stdout
    return tmp / "site"


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.remote = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            value = attrs.get(key)
            if not value:
                continue
            if urllib.parse.urlparse(value).scheme in ("http", "https"):
                if not (tag == "a" and key == "href"):  # a link the reader may click is fine; a load is not
                    self.remote.append(value)
            elif not value.startswith(("#", "data:", "mailto:", "javascript:")):
                self.links.append(value)


def test_index_lists_the_course_in_order(site):
    page = (site / "index.html").read_text(encoding="utf-8")
    positions = [page.find(f'notebooks/{p.stem}.html') for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    assert -1 not in positions, "a chapter is missing from the navigation"
    assert positions == sorted(positions), "the navigation is not in the course's order"


def test_every_docs_page_is_a_page_of_the_site_in_its_navigation(site):
    """README links to docs/ pages for everything beyond the front page; each is a page of the site too."""
    page = (site / "index.html").read_text(encoding="utf-8")
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert (site / "docs" / f"{doc.stem}.html").exists(), doc.name
        assert f'docs/{doc.stem}.html"' in page, f"docs/{doc.name} is not in the site's navigation"


def test_no_broken_internal_links_and_nothing_remote(site):
    broken, remote = [], []
    for page in site.rglob("*.html"):
        parser = Links()
        parser.feed(page.read_text(encoding="utf-8"))
        remote += [f"{page.relative_to(site)}: {r}" for r in parser.remote]
        for link in parser.links:
            target = urllib.parse.unquote(link.split("#")[0].split("?")[0])
            base = site if target.startswith("/") else page.parent  # 404.html links from the site's root
            if target and not (base / target.lstrip("/")).exists():
                broken.append(f"{page.relative_to(site)} -> {link}")
    assert not broken, f"{len(broken)} broken links, e.g. {broken[:10]}"
    assert not remote, f"pages load from the network: {remote[:5]}"


def test_chapter_page_renders_title_figure_and_table(site, out_dir):
    from selenium.webdriver.common.by import By

    with chromium("--allow-file-access-from-files", wait=WAIT) as driver:
        driver.get((site / "notebooks" / f"{CHAPTER}.html").as_uri())  # from disk: the site needs no server
        heading = driver.find_element(By.TAG_NAME, "h1").text
        assert heading.startswith("2.8.3") and "验证集" in heading
        figures = [img for img in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea img")
                   if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)]
        assert figures, "no figure from the notebook's outputs was drawn"
        assert figures[0].size["width"] > 200 and figures[0].size["height"] > 100
        tables = driver.find_elements(By.CSS_SELECTOR, ".jp-RenderedMarkdown table, .jp-RenderedHTMLCommon table")
        assert tables and len(tables[0].find_elements(By.TAG_NAME, "tr")) >= 3
        assert "训练集" in tables[0].text
        outputs = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output pre")
        assert outputs and any(o.text.strip() for o in outputs), "no printed output on the page"
        driver.execute_script("arguments[0].scrollIntoView()", figures[0])
        driver.save_screenshot(str(out_dir / f"{CHAPTER}.png"))


def test_each_chapter_page_says_which_mode_produced_it_and_when(site):
    page = (site / "notebooks" / f"{CHAPTER}.html").read_text(encoding="utf-8")
    assert "本页的输出来自" in page and "冒烟模式" in page and "运行结束于" in page


def test_provenance_prefers_the_runs_own_record_and_falls_back_to_the_folder(tmp_path):
    import nbformat

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_site
    finally:
        sys.path.pop(0)
    full = tmp_path / "full" / "x.ipynb"
    full.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, full)
    assert "**完整模式**" in build_site.provenance(full, nb)            # build/notebooks/full/
    nb.metadata["course_run"] = {"mode": "smoke", "finished": "2026-12-06 21:00 UTC"}
    line = build_site.provenance(full, nb)
    assert "**冒烟模式**" in line and "运行结束于 2026-12-06 21:00 UTC" in line   # the runner's record wins
    assert build_site.DEFAULT_EXECUTED[0].name == "full"   # full-mode copies are taken before smoke ones


def test_a_run_that_did_not_finish_is_shown_only_when_nothing_else_is_and_says_so(tmp_path):
    """A full-mode run stopped half-way (a dead kernel, an interrupted make notebooks) leaves a copy with
    outputs up to the cell that stopped: the site takes a finished smoke copy before it, and a page made from
    it says that the run did not finish."""
    import nbformat

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_site
    finally:
        sys.path.pop(0)
    source = build_site.NOTEBOOKS_DIR / "x.ipynb"
    full, smoke = tmp_path / "full" / "x.ipynb", tmp_path / "smoke" / "x.ipynb"
    for path, mode, result in ((full, "full", "failed: DeadKernelError: Kernel died"), (smoke, "smoke", "ok")):
        nb = nbformat.v4.new_notebook()
        nb.metadata["course_run"] = {"mode": mode, "finished": "2026-12-07 00:58 UTC", "result": result}
        path.parent.mkdir()
        nbformat.write(nb, path)
    assert build_site.executed_copy(source, [full.parent, smoke.parent]) == smoke
    smoke.unlink()
    assert build_site.executed_copy(source, [full.parent, smoke.parent]) == full
    line = build_site.provenance(full, nbformat.read(full, as_version=4))
    assert "**完整模式**" in line and "**这次运行没有跑完**（failed: DeadKernelError: Kernel died）" in line


def test_a_page_shows_the_recorded_results_though_its_executed_copy_ran_before_they_were_written(tmp_path):
    """make notebooks executes the prose as it was when the run started (empty result stamps) and writes the
    record afterwards: the staged page must carry the record's values, as the committed notebook does."""
    import nbformat

    from course.results import STAMP, format_value, read_record, recorded_values, stamped

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_site
    finally:
        sys.path.pop(0)
    name = "2.8.3_train_val_test"
    recorded = recorded_values(read_record(build_site.RESULTS_JSON)[name])
    assert recorded, "docs/results.json has no results of 2.8.3"
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:  # the executed copy as make notebooks leaves it: placeholders in the stamps
        if cell.cell_type == "markdown":
            cell.source = STAMP.sub(lambda m: m.group(1) + "待完整模式实测" + m.group(4), cell.source)
    executed = tmp_path / "executed" / f"{name}.ipynb"
    executed.parent.mkdir()
    nbformat.write(nb, executed)
    build_site.stage(tmp_path / "stage", [executed.parent])
    staged = nbformat.read(tmp_path / "stage" / "notebooks" / f"{name}.ipynb", as_version=4)
    shown = {}
    for cell in staged.cells:
        if cell.cell_type == "markdown":
            shown.update(stamped(cell.source))
    assert shown and "待完整模式实测" not in shown.values()
    assert all(shown[key] == format_value(recorded[key]) for key in shown)


class Anchors(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and (attrs.get("href") or "").startswith("#"):
            self.hrefs.append(attrs["href"][1:])


def test_every_in_page_link_resolves_and_heading_ids_keep_chinese_and_code(site):
    dead = []
    for page in site.rglob("*.html"):
        parser = Anchors()
        parser.feed(page.read_text(encoding="utf-8"))
        dead += [f"{page.relative_to(site)}: #{h}" for h in parser.hrefs
                 if h and urllib.parse.unquote(h) not in parser.ids]
    assert not dead, f"{len(dead)} in-page links lead nowhere, e.g. {dead[:10]}"
    chapter = Anchors()
    chapter.feed((site / "notebooks" / "00_quickstart.html").read_text(encoding="utf-8"))
    assert "2-网络mnist" in chapter.ids, "a notebook heading with inline code lost its Chinese or its code word"
    assert "2-网络mnist" in chapter.hrefs, "the notebook's table of contents does not link to the heading"


def search_index(site):
    import json

    return json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))


# a word of each chapter's title that a reader would type, and that jieba must keep whole
TITLE_WORDS = {"00": "流水线", "2.6.1": "学习率", "2.6.2": "优化器", "2.6.3": "初始化", "2.6.4": "批大小", "2.8.1": "准确率",
               "2.8.2": "形状", "2.8.3": "验证集", "2.8.4": "过拟合", "2.8.5": "VisualDL", "2.8.6": "归一化"}


def test_search_index_holds_each_chapters_title_words_segmented(site):
    index = search_index(site)
    separator = __import__("re").compile(index["config"]["separator"])
    titles = {d["location"].split("/")[-1].split("_")[0]: d["title"] for d in index["docs"]
              if d["location"].startswith("notebooks/") and "#" not in d["location"]}
    for number, word in TITLE_WORDS.items():
        assert number in titles, f"chapter {number} is missing from the search index"
        assert word in separator.split(titles[number]), \
            f"{word!r} is not a search word of {number}'s title {titles[number]!r} (jieba missing or split it)"


def test_font_stack_names_the_chinese_system_fonts(site):
    css = (site / "stylesheets" / "cjk.css").read_text(encoding="utf-8")
    for font in ("Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei"):
        assert f'"{font}"' in css
    assert "stylesheets/cjk.css" in (site / "index.html").read_text(encoding="utf-8")


def test_typing_a_chinese_word_in_the_search_box_finds_its_chapter(site):
    """Served over HTTP (browsers do not let a page opened from disk fetch the search index)."""
    import functools
    import http.server

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # (set on a functools.partial it never reached the handler)
            pass

    handler = functools.partial(Quiet, directory=str(site))
    with http_server(handler) as port, chromium(wait=WAIT) as driver:
        for number, word in TITLE_WORDS.items():  # each chapter by a word of its title
            driver.get(f"http://127.0.0.1:{port}/index.html")
            # waited for, not looked up once: on a loaded machine (CI's two lanes) it was once not there yet
            search = WebDriverWait(driver, WAIT).until(lambda drv: drv.find_element(By.ID, "__search"))
            driver.execute_script("arguments[0].click()", search)  # open the search
            box = driver.find_element(By.CSS_SELECTOR, "input.md-search__input")
            box.send_keys(word)

            def hits(drv, number=number):
                links = [a.get_attribute("href") or "" for a in
                         drv.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")]
                return links if any(f"notebooks/{number}" in link for link in links) else None

            try:
                WebDriverWait(driver, WAIT).until(hits)
            except Exception:
                meta = driver.find_element(By.CSS_SELECTOR, ".md-search-result__meta").text
                pytest.fail(f"typing {word!r} did not list chapter {number} (the result line says {meta!r})")
