"""Text the code chooses (flash messages, error titles, headings passed to templates) in the deployment's language.

The code keeps such text in English and marks it with `N_` so `make messages` extracts it; the templates
translate it where they render it (the `translate` filter, app/core/templating.py). Text built with an
f-string cannot be looked up in a catalog and shows in English until it is rewritten as a marked message with
%(name)s placeholders.
"""

from __future__ import annotations

from datetime import date
from typing import Self


def N_(message: str) -> str:
    """Marks `message` for extraction; it is translated where a template renders it."""
    return message


class Message(str):
    """A marked message with its parameters: reads as the English text filled in, and keeps the message and the
    parameters apart so a page can translate the message first (the `translate` filter) and then fill it in.

    `Message(N_("%(name)s already organizes this petition."), name=...)`: an f-string instead could not be found
    in the catalog.
    """

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, /, **params: object) -> Self:
        english = {name: _english(value) for name, value in params.items()}
        message = super().__new__(cls, template % english if params else template)
        message.template = template
        message.params = params
        return message


def _english(value: object) -> object:
    """A parameter as the English text shows it: a day as "01 December" (a page writes it its locale's way).
    Numbers stay as given, so a page and the API say the same; a caller groups a large one itself."""
    if isinstance(value, date):
        return f"{value:%d %B}"
    return value
