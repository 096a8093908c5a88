"""A runtime copied with another clock or other settings is the same process: it shares the process's parts."""

from __future__ import annotations

import dataclasses

import pytest

from app.anonymous.queue import anonymous_queue

pytestmark = pytest.mark.one_database


def test_a_copy_of_the_runtime_shares_the_anonymous_queue(rt) -> None:
    later = dataclasses.replace(rt, settings=rt.settings.model_copy())
    assert anonymous_queue(later) is anonymous_queue(rt), "signatures queued through one copy were lost to the other"
