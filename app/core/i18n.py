"""Text the code chooses (flash messages, error titles, headings passed to templates) in the deployment's language.

The code keeps such text in English and marks it with `N_` so `make messages` extracts it; the templates
translate it where they render it (the `translate` filter, app/core/templating.py). Text built with an
f-string cannot be looked up in a catalog and shows in English until it is rewritten as a marked message with
%(name)s placeholders.
"""

from __future__ import annotations


def N_(message: str) -> str:
    """Marks `message` for extraction; it is translated where a template renders it."""
    return message
