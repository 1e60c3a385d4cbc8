"""MkDocs hooks for ``make site`` (scripts/build_site.py names this file in the generated mkdocs.yml).

Heading ids that keep Chinese and code words, one rule for every page:

* Markdown pages get them from Python-Markdown's ``toc`` extension configured with ``slugify_unicode``
  (``write_config`` in build_site.py), e.g. ``## 3.2 出现 NaN`` -> ``#32-出现-nan``.
* Notebook pages are rendered by mkdocs-jupyter, which makes the heading ids and the page's table of contents
  in two different ways (nbconvert's HTML gets ASCII-only ids, the TOC is built from a Markdown copy with the
  inline code removed), so an all-Chinese heading gets ``id=""`` while the TOC links to ``#_1``, and a heading
  with ``code`` loses its code words. ``on_page_content`` below re-derives both from the rendered HTML with
  the same ``slugify_unicode`` and the same ``_1``, ``_2`` rule for repeats as the Markdown pages.
"""
import html
import re

from markdown.extensions.toc import slugify_unicode, unique

HEADING = re.compile(r"<h([1-6])(\s[^>]*)?>(.*?)</h\1>", re.S | re.I)
ANCHOR_LINK = re.compile(r"<a\s[^>]*class=\"anchor-link\"[^>]*>.*?</a>", re.S | re.I)
ID_ATTR = re.compile(r"\sid=\"[^\"]*\"", re.I)
TAG = re.compile(r"<[^>]+>")


def heading_id(text: str) -> str:
    """The id of a heading whose plain text is ``text`` (before making it unique on its page)."""
    return slugify_unicode(text, "-")


def _tokens(flat):
    """Nest [(level, id, name)] into MkDocs' TOC tokens."""
    root, stack = [], []
    for level, anchor, name in flat:
        token = {"level": level, "id": anchor, "name": name, "children": []}
        while stack and stack[-1]["level"] >= level:
            stack.pop()
        (stack[-1]["children"] if stack else root).append(token)
        stack.append(token)
    return root


def number_headings(content: str):
    """Give every heading of rendered HTML a unique Unicode id; return (new HTML, TOC tokens)."""
    ids, flat = set(), []

    def fix(match):
        level, attrs, inner = int(match.group(1)), match.group(2) or "", match.group(3)
        body = ANCHOR_LINK.sub("", inner)
        text = html.unescape(TAG.sub("", body)).strip()
        anchor = unique(heading_id(text), ids)  # adds it to ids
        flat.append((level, anchor, html.escape(text, quote=False)))
        attrs = ID_ATTR.sub("", attrs) + f' id="{html.escape(anchor)}"'
        link = f'<a class="anchor-link" href="#{html.escape(anchor)}">¶</a>' if body != inner else ""
        return f"<h{level}{attrs}>{body}{link}</h{level}>"

    return HEADING.sub(fix, content), _tokens(flat)


def on_page_content(html_content, page, config, files):
    if not page.file.src_uri.endswith(".ipynb"):
        return html_content
    from mkdocs.structure.toc import get_toc

    content, tokens = number_headings(html_content)
    page.toc = get_toc(tokens)
    return content
