"""A minimal XLSX writer: one sheet of strings, numbers and dates, streamed into the zip.

Why not openpyxl or xlsxwriter: both build a Python object per cell and take 1–3 s for a week
of a large region's appeals (10 000 rows); the reports aim for well under a second. The format
is a zip of a few XML files (ECMA-376); a sheet written row by row as text is ten times faster
and opens in Excel, LibreOffice and openpyxl (the tests read every file back with openpyxl).
"""

# ruff: noqa: E501 — the XML parts below are fixed text, kept as the format spells them.

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from xml.sax.saxutils import escape

Value = str | int | float | datetime | None
EXCEL_EPOCH = datetime(1899, 12, 30)
DATE_STYLE, HEADER_STYLE = 1, 2
# Characters XML 1.0 forbids (a resident's text may carry them): dropped rather than failing.
_ILLEGAL = {
    **{code: None for code in range(32) if code not in (9, 10, 13)},
    **{code: None for code in range(0xD800, 0xE000)},  # lone surrogates
    0xFFFE: None,
    0xFFFF: None,
}

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
</Types>"""
ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets>
</workbook>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>
</Relationships>"""
STYLES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<numFmts count="1"><numFmt numFmtId="164" formatCode="DD.MM.YYYY HH:MM"/></numFmts>
<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""
SHEET_HEAD = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">
<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>
<cols>{cols}</cols>
<sheetData>"""
SHEET_TAIL = "</sheetData></worksheet>"


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@lru_cache(maxsize=8192)  # categories, statuses and busy addresses repeat on every row
def _text(value: str) -> str:
    return escape(value.translate(_ILLEGAL))


class SheetWriter:
    """``sheet = SheetWriter("Обращения", [("Номер", 14), …])``, ``sheet.row([...])`` per row,
    ``sheet.close()``; then ``sheet.content()`` is the file. Datetimes must be naive (Excel has
    no time zones)."""

    def __init__(self, name: str, columns: Sequence[tuple[str, float]]) -> None:
        self._buffer = io.BytesIO()
        self._zip = zipfile.ZipFile(self._buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        self._zip.writestr("[Content_Types].xml", CONTENT_TYPES)
        self._zip.writestr("_rels/.rels", ROOT_RELS)
        self._zip.writestr("xl/workbook.xml", WORKBOOK.format(name=_text(name)))
        self._zip.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        self._zip.writestr("xl/styles.xml", STYLES)
        self._sheet = self._zip.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        self._letters = [column_letter(i) for i in range(len(columns))]
        cols = "".join(
            f'<col min="{i}" max="{i}" width="{width}" customWidth="1"/>'
            for i, (_, width) in enumerate(columns, start=1)
        )
        self._sheet.write(SHEET_HEAD.format(cols=cols).encode())
        self.rows = 0
        self.row([title for title, _ in columns], style=HEADER_STYLE)

    def row(self, values: Sequence[Value], style: int = 0) -> None:
        self.rows += 1
        number = self.rows
        cells = []
        for letter, value in zip(self._letters, values, strict=False):
            ref = f"{letter}{number}"
            styled = f' s="{style}"' if style else ""
            if value is None:
                continue
            if isinstance(value, str):
                cells.append(
                    f'<c r="{ref}"{styled} t="inlineStr"><is><t>{_text(value)}</t></is></c>'
                )
            elif isinstance(value, datetime):
                serial = (value - EXCEL_EPOCH).total_seconds() / 86400
                cells.append(f'<c r="{ref}" s="{DATE_STYLE}"><v>{serial!r}</v></c>')
            else:
                cells.append(f'<c r="{ref}"{styled}><v>{value!r}</v></c>')
        self._sheet.write(f'<row r="{number}">{"".join(cells)}</row>'.encode())

    def content(self) -> bytes:
        return self._buffer.getvalue()

    def close(self) -> None:
        """Finish the file; ``content()`` is complete only after this."""
        self._sheet.write(SHEET_TAIL.encode())
        self._sheet.close()
        self._zip.close()
