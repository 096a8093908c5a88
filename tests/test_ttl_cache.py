"""The per-process memo (app/core/cache.py): a value loaded while it was forgotten is not kept."""

from __future__ import annotations

from app.core.cache import TTLCache


def test_a_load_racing_a_forget_is_not_kept() -> None:
    """A page reads the departments (the load) while an admin's change commits and forgets them: what the page read
    may be the list before the change, so it answers that page and is not kept for the next ones. Before, it was
    kept for the whole `ttl` (10 s for the sign form's lists), in the admin's own process too."""
    cache = TTLCache()
    lists = ["Nursing"]

    def load_while_changed() -> list[str]:
        read = list(lists)  # what the page's statement returned
        lists.append("Night shift")  # the admin's change commits now
        cache.forget("groups")
        return read

    assert cache.get("groups", load_while_changed, ttl=60) == ["Nursing"]
    assert cache.get("groups", lambda: list(lists), ttl=60) == ["Nursing", "Night shift"]

    def load_shared_while_changed() -> int:
        cache.forget("other")
        return 1

    assert cache.get_shared("other", load_shared_while_changed, ttl=60) == 1
    assert cache.get_shared("other", lambda: 2, ttl=60) == 2


def test_a_value_is_kept_for_its_time() -> None:
    cache = TTLCache()
    assert cache.get("key", lambda: 1, ttl=60) == 1
    assert cache.get("key", lambda: 2, ttl=60) == 1
    cache.forget("key")
    assert cache.get("key", lambda: 3, ttl=60) == 3
