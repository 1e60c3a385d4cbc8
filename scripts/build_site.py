"""Build the course as a static HTML site: the executed notebooks, README and the docs pages.

    python scripts/build_site.py                       # -> build/site/index.html
    python scripts/build_site.py --executed DIR ...    # take executed notebooks from DIR first
    python scripts/build_site.py --out DIR

Tool: MkDocs with the Material theme and the mkdocs-jupyter plugin (the ``site`` extra). Notebooks are
rendered by nbconvert with their outputs (figures are embedded as images, tables and printed text as
they were), Markdown pages by MkDocs. Pages link with ``.html`` file names (``use_directory_urls: false``)
and load nothing from the network, so the site can be opened straight from disk; only the search box
needs it served (``python -m http.server -d build/site``), as browsers do not let a page opened from disk
fetch its search index.

For each notebook the first executed copy found is used: the ``--executed`` folders in order, then
``build/notebooks/full/`` and ``build/notebooks/smoke/`` (written by ``make notebooks``), so full-mode copies
win whenever they exist; the top of each chapter page says which mode produced it and when (``provenance``).
A notebook never executed is rendered without outputs and its page says so. The site is assembled in a staging folder
(``build/site-src/``) laid out like the repository, so that every relative link the notebooks and pages
already use (``../docs/notebooks.md``, ``2.8.3_train_val_test.ipynb``) keeps working; repository files they
link to that are not pages (a CSV, a script) are copied in as they are. The order of the index and of the
navigation is the course's: the chapter notebooks by number, then the homework, then the docs.
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
RESULTS_JSON = ROOT / "docs" / "results.json"
if str(ROOT) not in sys.path:  # this checkout's course.results, not another installed one
    sys.path.insert(0, str(ROOT))
SITE_FILES = ROOT / "scripts" / "site"  # the MkDocs hooks, the CJK font stack, the search's extra Chinese words
DEFAULT_EXECUTED = [ROOT / "build" / "notebooks" / "full", ROOT / "build" / "notebooks" / "smoke"]
# Markdown links [text](target) and <img src="target">; targets with a scheme or a pure #anchor are external
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|src=\"([^\"]+)\"")
NOT_EXECUTED = ("> **本页的笔记本还没有执行过**，所以没有输出。运行 `make notebooks`（或 `make notebooks ARGS=--smoke`）"
                "后再 `make site`，就能看到图和表。\n\n")


class SlugifyUnicode:
    """Written into mkdocs.yml as ``!!python/name:markdown.extensions.toc.slugify_unicode``."""


def title_of(path: Path) -> str:
    """The first Markdown heading of a notebook or page."""
    if path.suffix == ".ipynb":
        import nbformat
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    match = re.search(r"^#\s+(.+)$", text, re.M)
    return match.group(1).strip() if match else path.stem


def executed_copy(source: Path, folders) -> Path:
    """The executed copy of ``source`` to show: the first of ``folders`` (full mode before smoke) holding one
    whose run finished; a copy of a run that failed (``metadata.course_run.result``, written by
    ``make notebooks``: a dead kernel leaves outputs up to the cell that stopped) only when no folder has a
    finished one, and its page says so."""
    rel = source.relative_to(NOTEBOOKS_DIR)
    found = []
    for folder in folders:
        for candidate in (Path(folder) / rel, Path(folder) / rel.name):
            if candidate.exists():
                found.append(candidate)
                break
    # tests/test_notebooks.py keeps its executed copies as test-output/<test id>/<name>.ipynb
    for folder in folders:
        found.extend(sorted(Path(folder).glob(f"*/{rel.name}")))
    for copy in found:
        if run_result(copy) == "ok":
            return copy
    return found[0] if found else None


def run_result(copy: Path) -> str:
    """``ok``, or ``failed: ...`` as ``make notebooks`` wrote it; ``ok`` for a copy made without that record."""
    try:
        run = json.loads(copy.read_text(encoding="utf-8")).get("metadata", {}).get("course_run", {})
    except (OSError, ValueError):
        return "failed: unreadable copy"
    return run.get("result", "ok")


def provenance(copy: Path, nb, depth: int = 1) -> str:
    """The line at the top of a chapter page: which mode produced its outputs, and when.

    ``make notebooks`` writes both into the executed copy (``metadata.course_run``); for a copy made some
    other way (tests/test_notebooks.py runs in smoke mode) the mode is read from its folder's name
    (``build/notebooks/full/``) and the time from the file."""
    import datetime

    run = nb.metadata.get("course_run", {})
    mode = run.get("mode") or ("full" if "full" in Path(copy).resolve().parts else "smoke")
    when = run.get("finished") or datetime.datetime.fromtimestamp(
        Path(copy).stat().st_mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    record = ""
    if (ROOT / "docs" / "results.md").exists():   # written by the first full-mode make notebooks
        record = f"；完整模式的关键结果见 [docs/results.md]({'../' * depth}docs/results.html)"
    if mode == "full":
        what = "**完整模式**（学生运行的设置，全部数据）"
    else:
        what = f"**冒烟模式**（`COURSE_SMOKE=1`，小数据子集，数字不代表完整训练{record}）"
    line = f"> 本页的输出来自{what}的一次运行，运行结束于 {when}。"
    result = run.get("result", "ok")
    if result != "ok":
        line += f"\n>\n> **这次运行没有跑完**（{result}）：停下之后的单元格没有输出。"
    return line


def docs_pages():
    """docs/*.md in the order README's "More" table links to them (any other by name), then each
    docs/sweeps/<name>/README.md with its results.md."""
    more = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## More", 1)[-1]  # all of README if no such section
    linked = [(ROOT / target).resolve() for target in links_in(more)]
    pages = sorted((ROOT / "docs").glob("*.md"),
                   key=lambda p: (linked.index(p.resolve()) if p.resolve() in linked else len(linked), p.name))
    for sweep in sorted((ROOT / "docs" / "sweeps").glob("*/")):
        pages += [p for p in (sweep / "README.md", sweep / "results.md") if p.exists()]
    return pages


def links_in(text: str):
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
            continue
        yield target.split("#")[0]


def copy_linked_files(text: str, source: Path, staged: Path, stage: Path, pages: set):
    """Copy the repository files that a page links to (and that are not pages) next to the staged page."""
    for target in links_in(text):
        if not target:
            continue
        real = (source.parent / target).resolve()
        try:
            rel = real.relative_to(ROOT)
        except ValueError:
            continue
        if rel.as_posix() in pages or not real.exists():
            continue
        dest = (staged.parent / target).resolve()
        if stage.resolve() not in dest.parents:
            continue
        if real.is_dir():  # a link to a folder is a link to its README page; else its files come along
            if not (real / "README.md").exists():
                dest.mkdir(parents=True, exist_ok=True)
                for item in real.iterdir():
                    if item.is_file():
                        shutil.copy2(item, dest / item.name)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, dest)


def html_links(source: str) -> str:
    """Notebook Markdown is rendered by nbconvert, which leaves links alone: point them at the .html pages."""
    def fix(match):
        whole, target = match.group(0), match.group(1)
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            return whole
        path, _, anchor = target.partition("#")
        if path.endswith((".ipynb", ".md")):
            new = path.rsplit(".", 1)[0] + ".html"
            if new.endswith("README.html"):
                new = new[: -len("README.html")] + "index.html"
            return whole.replace(target, new + ("#" + anchor if anchor else ""))
        if path.endswith("/") or (path and "." not in path.rsplit("/", 1)[-1]):  # a folder: its README page
            return whole.replace(target, path.rstrip("/") + "/index.html" + ("#" + anchor if anchor else ""))
        return whole
    return LINK.sub(lambda m: fix(m) if m.group(1) else m.group(0), source)


def stage(out_stage: Path, executed_folders):
    import nbformat

    if out_stage.exists():
        shutil.rmtree(out_stage)
    out_stage.mkdir(parents=True)
    chapters = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    homework = sorted((NOTEBOOKS_DIR / "homework").glob("*.ipynb"))
    pages = {p.relative_to(ROOT).as_posix() for p in chapters + homework + docs_pages()} | {"README.md"}
    from course import results  # this checkout's (the module puts the repository first on sys.path)

    report = {}
    recorded = {key: results.recorded_values(entry) for key, entry in results.read_record(RESULTS_JSON).items()}
    for source in chapters + homework:
        rel = source.relative_to(ROOT)
        copy = executed_copy(source, executed_folders)
        nb = nbformat.read(copy or source, as_version=4)
        # An executed copy holds the prose as it was when the run started: its result stamps are empty
        # until the run has written the record. The page shows the recorded values, as the committed
        # notebook does.
        values = recorded.get(rel.relative_to("notebooks").with_suffix("").as_posix(), {})
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = html_links(results.stamp_results(cell.source, values))
        if copy is None:
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(NOT_EXECUTED))
        else:
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(provenance(copy, nb, depth=len(rel.parts) - 1)))
        staged = out_stage / rel
        staged.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, staged)
        copy_linked_files("\n".join(c.source for c in nb.cells if c.cell_type == "markdown"), source, staged,
                          out_stage, pages)
        report[rel.as_posix()] = copy
    for page in [ROOT / "README.md"] + docs_pages():
        rel = page.relative_to(ROOT)
        staged = out_stage / ("index.md" if rel.as_posix() == "README.md" else rel)
        staged.parent.mkdir(parents=True, exist_ok=True)
        text = page.read_text(encoding="utf-8")
        shutil.copy2(page, staged)
        copy_linked_files(text, page, staged, out_stage, pages)
        for img in page.parent.glob("*.png"):  # figures beside a docs page
            shutil.copy2(img, staged.parent / img.name)
    return chapters, homework, report


def nav_entry(path: Path):
    rel = path.relative_to(ROOT).as_posix()
    return {title_of(path): rel}


def write_config(out_stage: Path, site_dir: Path, chapters, homework):
    import yaml

    docs = []
    for page in docs_pages():
        rel = page.relative_to(ROOT).as_posix()
        name = title_of(page)
        if page.name == "results.md" and page.parent != ROOT / "docs":   # a sweep's table
            name = f"{page.parent.name}: results"
        docs.append({name: rel})
    config = {
        "site_name": "飞桨手写数字识别课程（MNIST）",
        "docs_dir": str(out_stage),
        "site_dir": str(site_dir),
        "use_directory_urls": False,
        "theme": {"name": "material", "language": "zh", "font": False,
                  "features": ["navigation.sections", "navigation.indexes"]},
        # jieba (the site extra) segments Chinese for the search index, with the course's terms added so that
        # 过拟合 stays one word; the separator includes the zero-width space jieba's segments are joined with
        # and the full-width punctuation that follows a Latin word ("VisualDL：")
        "plugins": [{"search": {"lang": ["zh", "en"], "separator": r"[\s\u200b\-，。、：；？！（）“”]",
                                "jieba_dict_user": str(SITE_FILES / "jieba_terms.txt")}},
                    {"mkdocs-jupyter": {"include_source": False, "execute": False,
                                        "ignore_h1_titles": False, "include_requirejs": False}}],
        # heading ids keep Chinese and code words (notebook pages: scripts/site/hooks.py, same rule)
        "markdown_extensions": ["tables", "fenced_code", {"toc": {"slugify": SlugifyUnicode()}}, "admonition"],
        "hooks": [str(SITE_FILES / "hooks.py")],
        "extra_css": ["stylesheets/cjk.css"],
        "validation": {"links": {"not_found": "warn", "absolute_links": "ignore", "unrecognized_links": "ignore"}},
        "nav": [{"首页（README）": "index.md"},
                {"课程笔记本": [nav_entry(p) for p in chapters]},
                {"作业": [nav_entry(p) for p in homework]},
                {"实测记录（docs）": docs}],
    }
    (out_stage / "stylesheets").mkdir(exist_ok=True)
    shutil.copy2(SITE_FILES / "cjk.css", out_stage / "stylesheets" / "cjk.css")
    path = out_stage.parent / "mkdocs.yml"
    yaml.add_representer(SlugifyUnicode, lambda dumper, _: dumper.represent_scalar(
        "tag:yaml.org,2002:python/name:markdown.extensions.toc.slugify_unicode", ""), Dumper=yaml.SafeDumper)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executed", action="append", default=[], type=Path,
                        help="a folder of executed notebooks, searched before build/notebooks/{full,smoke}")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="the site folder")
    args = parser.parse_args(argv)
    try:
        import mkdocs  # noqa: F401
        import mkdocs_jupyter  # noqa: F401
        import material  # noqa: F401
    except ImportError as error:
        sys.exit(f"build_site: {error.name} is not installed; install the site extra: pip install -e \".[site]\"")
    out = args.out.resolve()
    out_stage = out.parent / (out.name + "-src") / "pages"
    chapters, homework, report = stage(out_stage, args.executed + DEFAULT_EXECUTED)
    config = write_config(out_stage, out, chapters, homework)
    for rel, copy in report.items():
        print(f"{rel:50s} {'from ' + str(copy.relative_to(ROOT) if ROOT in copy.parents else copy) if copy else 'NOT EXECUTED: no outputs'}")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--clean", "--config-file", str(config)],
                          cwd=out_stage.parent)
    if done.returncode:
        return done.returncode
    print(f"site: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
