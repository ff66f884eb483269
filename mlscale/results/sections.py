"""The report as data: sections of blocks (text, tables, lists, figures), each able to
render itself as Markdown, CSV-flavoured text and HTML.

`mlscale report` prints `Section.text(fmt, printed=True)` ("markdown" or "csv": how tables
print); report.md holds `Section.text("markdown")`; report.html renders the same sections
with `Section.html(images)`, the plots embedded from the folder `images`.

Records only: no torch here.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mlscale.results.tables import bullet_list, to_csv, to_markdown


@dataclass
class Text:
    """A paragraph."""

    text: str

    def render(self, fmt: str) -> str:
        return self.text + "\n\n"

    def html(self, images: Path) -> str:
        return f"<p>{html.escape(self.text)}</p>"


@dataclass
class Table:
    """A DataFrame; `in_markdown=False` leaves it out of the Markdown text (where another
    block already says the same, as the scaling list does for the scaling table)."""

    frame: pd.DataFrame
    caption: str = ""
    floatfmt: str = ".10g"
    in_markdown: bool = True

    def render(self, fmt: str) -> str:
        if fmt == "csv":
            return (f"{self.caption}:\n\n" if self.caption else "") + to_csv(self.frame) + "\n"
        if not self.in_markdown:
            return ""
        return (f"{self.caption}:\n\n" if self.caption else "") + to_markdown(self.frame, self.floatfmt) + "\n"

    def html(self, images: Path) -> str:
        caption = f'<div class="caption">{html.escape(self.caption)}</div>' if self.caption else ""
        if self.frame.empty:
            return caption + "<p>(no runs)</p>"
        fmt = "{:" + self.floatfmt + "}"
        body = self.frame.to_html(index=False, border=0, classes="data", float_format=fmt.format, na_rep="")
        return f'{caption}<div class="scroll">{body}</div>'


@dataclass
class Bullets:
    """A list, under "heading:" when one is given; `indent` only shifts the Markdown."""

    items: list[str]
    heading: str = ""
    indent: str = ""

    def render(self, fmt: str) -> str:
        return bullet_list(self.items, self.heading, self.indent) + "\n"

    def html(self, images: Path) -> str:
        heading = f"<p>{html.escape(self.heading)}:</p>" if self.heading else ""
        return heading + "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in self.items) + "</ul>"


@dataclass
class Figure:
    """A PNG in the report's folder, by file name."""

    file: str
    caption: str

    def render(self, fmt: str) -> str:
        return f"![{self.caption}]({self.file})\n\n"

    def html(self, images: Path) -> str:
        data = base64.b64encode((images / self.file).read_bytes()).decode("ascii")
        caption = html.escape(self.caption)
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption} ({html.escape(self.file)})</figcaption></figure>"
        )


@dataclass
class Chart:
    """A chart drawn from the report's data: as text where the report is text (printed,
    Markdown, CSV), as a PNG where it has a folder (`draw(path)` writes `file` there: report.html
    embeds it, `report --out` keeps it)."""

    text: str
    file: str
    caption: str
    draw: Callable[[Path], object]

    def render(self, fmt: str) -> str:
        return self.text + "\n" if fmt == "csv" else f"```\n{self.text}\n```\n\n"

    def html(self, images: Path) -> str:
        self.draw(images / self.file)
        return Figure(self.file, self.caption).html(images)


@dataclass
class Verbatim:
    """Text rendered elsewhere, kept as it is (`csv`: its form for CSV text, where it has
    one); preformatted in HTML."""

    markdown: str
    csv: str | None = None

    def render(self, fmt: str) -> str:
        return self.csv if fmt == "csv" and self.csv is not None else self.markdown

    def html(self, images: Path) -> str:
        return f"<pre>{html.escape(self.markdown)}</pre>"


Block = Text | Table | Bullets | Figure | Chart | Verbatim


@dataclass
class Section:
    """A titled part of the report. `heading=False`: its text carries its own headings.
    `printed_title`: the shorter heading `mlscale report` prints, where it has one."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    heading: bool = True
    printed_title: str = ""

    def text(self, fmt: str = "markdown", printed: bool = False) -> str:
        title = self.printed_title if printed and self.printed_title else self.title
        head = f"## {title}\n\n" if self.heading else ""
        return head + "".join(block.render(fmt) for block in self.blocks)

    def html(self, images: Path) -> str:
        return "\n".join(block.html(images) for block in self.blocks)
