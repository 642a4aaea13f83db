"""Makes the PDF fixtures of hearth's document tests, and their references.

Run from the repository root (needs reportlab and Pillow from PyPI, and
poppler-utils from Debian for the references):

    python testdata/documents/make_pdfs.py

Writes testdata/documents/*.pdf and, for every page of sample.pdf, what
poppler makes of it: refs/sample.pN.txt (pdftotext -enc UTF-8) and
refs/sample.pN.png (pdftoppm -r 72). hearth's reader (hayro) is compared
with those in crates/hearth-document/tests/poppler.rs. Fonts: the
Bitstream Vera TrueType faces and a URW Type 1 face that reportlab ships,
embedded, so that both renderers draw the same glyphs.
"""

import io
import os
import subprocess
import zlib

import reportlab
from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A5, letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

OUT = os.path.dirname(os.path.abspath(__file__))
REFS = os.path.join(OUT, "refs")
FONTS = os.path.join(os.path.dirname(reportlab.__file__), "fonts")


def register_fonts():
    for name, file in [("Vera", "Vera.ttf"), ("VeraBd", "VeraBd.ttf"), ("VeraIt", "VeraIt.ttf")]:
        pdfmetrics.registerFont(TTFont(name, os.path.join(FONTS, file)))
    face = pdfmetrics.EmbeddedType1Face(os.path.join(FONTS, "_ab_____.afm"), os.path.join(FONTS, "_ab_____.pfb"))
    pdfmetrics.registerTypeFace(face)
    pdfmetrics.registerFont(pdfmetrics.Font("URWBook", face.name, "WinAnsiEncoding"))


def lines(c, font, size, x, y, texts, leading=None):
    leading = leading or size * 1.3
    c.setFont(font, size)
    for t in texts:
        c.drawString(x, y, t)
        y -= leading
    return y


COLUMN_A = [
    "The left column opens the page.",
    "Its lines are read first, from",
    "top to bottom, before any line",
    "of the right column: that is how",
    "a reader of the page takes it in.",
]
COLUMN_B = [
    "The right column comes second.",
    "It ends with the number 4721,",
    "which a question may ask for.",
]


def sample():
    c = canvas.Canvas(os.path.join(OUT, "sample.pdf"), pagesize=letter)
    c.setTitle("hearth document test")
    # 1: several fonts, non-ASCII text.
    y = lines(c, "VeraBd", 20, 72, 720, ["Quarterly report of the hearth project"])
    y = lines(c, "Vera", 11, 72, y - 10, [
        "This page is set in Bitstream Vera, a TrueType face embedded in the file.",
        "The project served 1,234 requests on its first day, and none failed.",
    ])
    y = lines(c, "VeraIt", 11, 72, y, ["An italic line: the numbers are made up for the test."])
    y = lines(c, "URWBook", 12, 72, y - 6, ["A line in an embedded Type 1 face (URW Bookman)."])
    lines(c, "Vera", 11, 72, y - 10, [
        "En français : l'API accepte les entrées multimodales — déjà vu, naïve, cœur.",
        "Auf Deutsch: Größe, Übermaß und Straße. En español: niño, año, señal.",
    ])
    c.showPage()
    # 2: two columns, each drawn whole.
    lines(c, "Vera", 11, 72, 700, COLUMN_A)
    lines(c, "Vera", 11, 320, 700, COLUMN_B)
    c.showPage()
    # 3: a page turned a quarter (/Rotate 90).
    c.setPageRotation(90)
    lines(c, "VeraBd", 14, 72, 500, ["This page is rotated by ninety degrees."])
    lines(c, "Vera", 11, 72, 470, ["Its text still reads from left to right once turned."])
    c.showPage()
    c.setPageRotation(0)
    # 4: an image and no text at all (a scan without OCR).
    img = Image.new("RGB", (240, 160), "white")
    d = ImageDraw.Draw(img)
    for i in range(0, 240, 12):
        d.rectangle([i, 0, i + 6, 160], fill=(200, 40 + i // 2, 60))
    d.ellipse([60, 30, 180, 130], fill=(20, 60, 200))
    c.drawImage(ImageReader(img), 100, 400, width=360, height=240)
    c.showPage()
    # 5: a smaller page (A5).
    c.setPageSize(A5)
    lines(c, "Vera", 12, 40, 540, ["The last page is A5, smaller than the others."])
    c.showPage()
    c.save()


def fact():
    # The answer to a question is only here: for the real-model tests.
    c = canvas.Canvas(os.path.join(OUT, "fact.pdf"), pagesize=letter)
    lines(c, "Helvetica-Bold", 16, 72, 720, ["Office memo"])
    lines(c, "Helvetica", 12, 72, 690, [
        "The office cat is named Biscuit.",
        "Biscuit is orange and sleeps on the printer.",
    ])
    c.showPage()
    c.save()


def encrypted():
    c = canvas.Canvas(os.path.join(OUT, "encrypted.pdf"), pagesize=letter, encrypt="secret")
    lines(c, "Helvetica", 12, 72, 720, ["Only with the password."])
    c.showPage()
    c.save()


def raw_pdf(objects):
    """A PDF from numbered object bodies, with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for o in offsets:
        out.write(b"%010d 00000 n \n" % o)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def stream(data, filters):
    return b"<< /Length %d /Filter [%s] >>\nstream\n" % (len(data), filters) + data + b"\nendstream"


def hostile():
    # No pages at all.
    with open(os.path.join(OUT, "nopages.pdf"), "wb") as f:
        f.write(raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s] /Contents 4 0 R >>"
    # A page of 100000 x 100000 points.
    with open(os.path.join(OUT, "hostile-huge-page.pdf"), "wb") as f:
        content = b"0 0 1 rg 0 0 100000 100000 re f"
        f.write(raw_pdf([
            b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            page % b"100000 100000", b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        ]))
    # A decompression bomb: 4 GiB of content stream, deflated twice (10 kB).
    z = zlib.compressobj(9)
    chunk = b" " * (1 << 24)
    once = b"".join(z.compress(chunk) for _ in range(256)) + z.flush()
    twice = zlib.compress(once, 9)
    with open(os.path.join(OUT, "hostile-bomb.pdf"), "wb") as f:
        f.write(raw_pdf([
            b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            page % b"612 792", stream(twice, b"/FlateDecode /FlateDecode"),
        ]))
    # Arrays nested 200000 deep in the page's resources.
    deep = b"[" * 200000 + b"]" * 200000
    with open(os.path.join(OUT, "hostile-nesting.pdf"), "wb") as f:
        content = b"BT /F1 12 Tf 72 720 Td (deep) Tj ET"
        f.write(raw_pdf([
            b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /X " + deep + b" >> >>",
            b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        ]))


def references():
    os.makedirs(REFS, exist_ok=True)
    src = os.path.join(OUT, "sample.pdf")
    info = subprocess.run(["pdfinfo", src], capture_output=True, text=True, check=True).stdout
    pages = int(next(l for l in info.splitlines() if l.startswith("Pages:")).split()[1])
    for n in range(1, pages + 1):
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", "-f", str(n), "-l", str(n), src, "-"],
                              capture_output=True, check=True).stdout
        with open(os.path.join(REFS, f"sample.p{n}.txt"), "wb") as f:
            f.write(text)
        subprocess.run(["pdftoppm", "-r", "72", "-png", "-f", str(n), "-l", str(n), "-singlefile",
                        src, os.path.join(REFS, f"sample.p{n}")], check=True)
    version = subprocess.run(["pdftotext", "-v"], capture_output=True, text=True).stderr.splitlines()[0]
    with open(os.path.join(REFS, "README.md"), "w") as f:
        f.write(f"References made by make_pdfs.py with poppler ({version}): pdftotext -enc UTF-8 and pdftoppm -r 72 -png, one page each.\n")


if __name__ == "__main__":
    register_fonts()
    sample()
    fact()
    encrypted()
    hostile()
    references()
