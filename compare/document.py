"""The one report writer: a document of headings, paragraphs, tables and images, written as a
self-contained HTML page and as Markdown (readable on GitHub) side by side.

Both reports use it: ``softleak figs report`` (the reproduction report) and ``softleak audit``.
Images are referenced by paths relative to the report's folder (nothing is embedded, nothing is
fetched: no scripts, fonts or style sheets from the network); the page's style is inline.

    doc = Document("Reproduction report")
    doc.heading("Claims")
    doc.table(["claim", "verdict"], [["fig7.fall_before_jump", "holds"]], marks=[None, "holds"])
    doc.image("fig7/fig7.png", "Fig. 7 at the quick preset")
    doc.write(root, "report")  # root/report.html and root/report.md

Imports the standard library only (and numpy, through compare.style's atomic writer).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

#: Row classes a table may mark (a verdict colours its row in HTML; Markdown shows the text).
MARKS = ("holds", "fails", "untested", "failed")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 72em; padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
tr.holds td.mark { background: #dff0d8; } tr.fails td.mark { background: #f8d7da; }
tr.untested td.mark { background: #fff3cd; } tr.failed td { background: #f8d7da; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
code { background: #f6f6f6; padding: 0 0.2em; }
"""


@dataclass
class Document:
    title: str
    blocks: list[tuple] = field(default_factory=list)

    def heading(self, text: str, level: int = 2, anchor: str | None = None) -> None:
        self.blocks.append(("heading", text, level, anchor))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def table(
        self,
        columns: list[str],
        rows: list[list],
        *,
        marks: list[str | None] | None = None,
        mark_column: int | None = None,
    ) -> None:
        """rows of cells (anything ``str`` renders); ``marks``: per row one of ``MARKS`` or None,
        colouring the cell at ``mark_column`` (every cell of a ``failed`` row)."""
        marks = list(marks) if marks is not None else [None] * len(rows)
        if len(marks) != len(rows):
            raise ValueError("one mark per row")
        for m in marks:
            if m is not None and m not in MARKS:
                raise ValueError(f"unknown mark {m!r}")
        self.blocks.append(("table", list(columns), [list(r) for r in rows], marks, mark_column))

    def image(self, path: str, caption: str = "") -> None:
        """An image at ``path`` relative to the report's folder."""
        if Path(path).is_absolute() or "://" in path:
            raise ValueError(f"images are referenced by relative paths, got {path!r}")
        self.blocks.append(("image", path, caption))

    # writers --------------------------------------------------------------------------------
    def to_markdown(self) -> str:
        """The document as Markdown. Text is escaped as in the HTML page (``<``, ``>``, ``&`` as
        entities, which Markdown renders as those characters): raw HTML in a note, a title or a
        cell is shown, never rendered."""
        out = [f"# {_md_text(self.title)}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                _, text, level, _anchor = block
                out += ["#" * max(2, min(level, 6)) + " " + _md_text(text), ""]
            elif kind == "paragraph":
                out += [_md_text(block[1]), ""]
            elif kind == "table":
                _, columns, rows, _marks, _col = block
                out.append("| " + " | ".join(_md_cell(c) for c in columns) + " |")
                out.append("|" + "---|" * len(columns))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                out.append("")
            elif kind == "image":
                _, path, caption = block
                out += [f"![{_md_cell(caption)}](<{_md_text(path)}>)", ""]
                if caption:
                    out += [f"*{_md_text(caption)}*", ""]
        return "\n".join(out).rstrip() + "\n"

    def to_html(self) -> str:
        e = html.escape
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(self.title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{e(self.title)}</h1>",
        ]
        for block in self.blocks:
            kind = block[0]
            if kind == "heading":
                _, text, level, anchor = block
                level = max(2, min(level, 6))
                ident = f' id="{e(anchor)}"' if anchor else ""
                out.append(f"<h{level}{ident}>{e(text)}</h{level}>")
            elif kind == "paragraph":
                out.append(f"<p>{e(block[1])}</p>")
            elif kind == "table":
                _, columns, rows, marks, col = block
                out.append("<table><thead><tr>")
                out += [f"<th>{e(str(c))}</th>" for c in columns]
                out.append("</tr></thead><tbody>")
                for row, mark in zip(rows, marks, strict=True):
                    cls = f' class="{mark}"' if mark else ""
                    cells = [
                        f'<td class="mark">{e(str(c))}</td>'
                        if i == col
                        else f"<td>{e(str(c))}</td>"
                        for i, c in enumerate(row)
                    ]
                    out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
                out.append("</tbody></table>")
            elif kind == "image":
                _, path, caption = block
                out.append(
                    f'<figure><img src="{e(path)}" alt="{e(caption)}">'
                    + (f"<figcaption>{e(caption)}</figcaption>" if caption else "")
                    + "</figure>"
                )
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def write(self, folder: str | Path, stem: str = "report") -> dict[str, Path]:
        """``folder/stem.html`` and ``folder/stem.md``, each written atomically."""
        from softleak.compare.style import write_text_atomic

        folder = Path(folder)
        return {
            f"{stem}.html": write_text_atomic(folder / f"{stem}.html", self.to_html()),
            f"{stem}.md": write_text_atomic(folder / f"{stem}.md", self.to_markdown()),
        }


def _md_text(value) -> str:
    """Markdown text with HTML escaped as ``to_html`` escapes it (quotes need no escaping)."""
    return html.escape(str(value), quote=False)


def _md_cell(value) -> str:
    """A Markdown table cell: HTML escaped, pipes escaped, line breaks folded."""
    return _md_text(value).replace("|", "\\|").replace("\n", " ")
