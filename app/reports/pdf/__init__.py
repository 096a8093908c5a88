"""PDF reports, drawn with fpdf2 (pure Python, no system packages): the delivery report organizers hand to
leadership, the list of the names signers chose to show, and a poll's result.

Text is set in DejaVu Sans, bundled in `fonts/` with its licence, so names in Latin, Greek, Cyrillic, Arabic,
Hebrew, Armenian, Georgian and many other scripts print as written. A character the font lacks (Chinese,
Japanese and Korean script, Devanagari) prints as U+FFFD, and the document then says so and points to the CSV,
JSON and XLSX exports, which hold every name exactly; it never prints as an empty box or vanishes without a
word. Right-to-left text is put in visual order with fpdf2's bidi algorithm, but not shaped (that needs
HarfBuzz, which is not a dependency): Arabic letters print in their isolated forms, unjoined.

The chart of signatures over time is the one the report page shows (`app.reports.tally.over_time`, the same
bars, colour and gridlines as `app.responses.chart`), drawn with PDF primitives rather than parsed from SVG.

- `document`: the toolkit (page, fonts, footer, text that never vanishes), which the poster uses too;
- `delivery`: the delivery report;
- `signers`: the signer list;
- `ballot`: a poll's result (issue #25), as its page publishes it.
"""

from app.reports.pdf.delivery import tally_pdf
from app.reports.pdf.signers import signers_pdf

__all__ = ["signers_pdf", "tally_pdf"]
