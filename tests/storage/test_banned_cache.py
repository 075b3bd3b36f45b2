"""The in-memory set of banned residents against reads that overlap with changes."""

from __future__ import annotations

from storage.uow import BannedCache

ANNA = ("telegram", "501")
BORIS = ("vk", "502")


def test_a_ban_or_unban_made_here_during_a_read_outlives_the_read() -> None:
    cache = BannedCache()
    cache.begin_read()
    cache.mark(ANNA, banned=True)  # /ban here after the read's snapshot was taken
    cache.mark(BORIS, banned=False)  # /unban here likewise
    cache.replace({BORIS})  # what the read saw
    assert cache.fresh() == {ANNA}


def test_a_stale_correction_does_not_outlive_a_newer_read() -> None:
    """The gate read Anna's row unbanned, then another process banned her again and the
    set's read saw it: the correction drawn from the older row must not undo that."""
    cache = BannedCache()
    cache.replace({ANNA})
    cache.begin_read()
    cache.forget(ANNA)
    assert cache.fresh() == set()  # at once, as the row said
    cache.replace({ANNA})
    assert cache.fresh() == {ANNA}


def test_the_set_is_read_again_after_its_time() -> None:
    cache = BannedCache()
    cache.replace(set())
    assert cache.fresh() == set()
    cache.TTL = 0.0
    assert cache.fresh() is None
