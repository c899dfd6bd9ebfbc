"""Document bytes to plain text, by MIME type: text, Markdown (kept as written: its headings guide
chunking), HTML (BeautifulSoup; headings become Markdown headings) and PDF (pypdf, page by page)."""

from __future__ import annotations

import io

SUPPORTED_TYPES = {
    "text/plain": "text", "text/markdown": "markdown", "text/x-markdown": "markdown", "text/html": "html",
    "application/xhtml+xml": "html", "application/pdf": "pdf",
}
EXTENSION_TYPES = {".txt": "text/plain", ".text": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown",
                   ".html": "text/html", ".htm": "text/html", ".pdf": "application/pdf"}


class ParseError(ValueError):
    """The bytes are not a readable document of their type."""


def normalise_type(mime_type: str) -> str:
    """``text/html; charset=utf-8`` -> ``text/html`` (lower case, no parameters)."""
    return mime_type.split(";", 1)[0].strip().lower()


def type_from_name(filename: str) -> str | None:
    """A MIME type from a file name's extension (only the extension is read)."""
    dot = filename.rfind(".")
    return EXTENSION_TYPES.get(filename[dot:].lower()) if dot >= 0 else None


def parse(data: bytes, mime_type: str) -> str:
    """The text of a document (raises :class:`ParseError`)."""
    kind = SUPPORTED_TYPES.get(normalise_type(mime_type))
    if kind is None:
        raise ParseError(f"Unsupported document type {mime_type!r}.")
    if kind == "pdf":
        return _pdf(data)
    text = _decode(data)
    return _html(text) if kind == "html" else text


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError("The document is not UTF-8 text.") from exc


def _html(text: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            heading.replace_with(f"\n\n{'#' * level} {heading.get_text(' ', strip=True)}\n\n")
    for block in soup.find_all(["p", "li", "div", "section", "article", "tr", "br", "pre", "blockquote"]):
        block.insert_after("\n\n")
    lines = [" ".join(line.split()) for line in soup.get_text().splitlines()]
    return "\n".join(lines).strip()


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ParseError("Encrypted PDFs are not supported.")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, ParseError):
            raise
        raise ParseError(f"Unreadable PDF: {exc}") from exc
    return "\n\n".join(p for p in pages if p)
