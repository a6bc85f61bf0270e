"""The informer cache's echo rules: which watch events are the operator's own writes coming back."""

from __future__ import annotations

from typing import Any

from neuronfleet.controller.cache import Cache

KIND, NS, NAME = "ModelDeployment", "ml", "llama"


def _body(rv: int, **annotations: str) -> dict[str, Any]:
    return {"metadata": {"namespace": NS, "name": NAME, "resourceVersion": str(rv), "annotations": annotations}}


def test_the_echo_of_a_write_starts_no_pass_whether_it_comes_before_or_after_the_answer() -> None:
    cache = Cache()
    cache.observe(KIND, _body(1))
    with cache.writing(KIND, NS, NAME):
        early = cache.observe(KIND, _body(2))  # the echo overtakes the answer
    assert not early.changed
    assert cache.record_write(KIND, _body(2))
    with cache.writing(KIND, NS, NAME):
        pass
    assert cache.record_write(KIND, _body(3))
    late = cache.observe(KIND, _body(3))  # the echo after the answer
    assert not late.changed


def test_a_foreign_change_whose_event_arrives_during_a_write_makes_the_writer_look_again() -> None:
    """Someone annotates the object just before the operator's patch reaches the server: the event
    (rv 2) arrives while the patch is in flight, so it starts no pass; the answer (rv 3) includes the
    change, and the writer must be told that nothing has looked at it yet."""
    cache = Cache()
    cache.observe(KIND, _body(1))
    with cache.writing(KIND, NS, NAME):
        foreign = cache.observe(KIND, _body(2, poke="now"))
        echo = cache.observe(KIND, _body(3, poke="now"))
    assert not foreign.changed and not echo.changed  # no pass yet: the answer decides
    assert cache.record_write(KIND, _body(3, poke="now")) is False
    # Judged once: the next write with only its own echo in flight is clean.
    with cache.writing(KIND, NS, NAME):
        cache.observe(KIND, _body(4, poke="now"))
    assert cache.record_write(KIND, _body(4, poke="now")) is True


def test_a_change_after_the_write_is_newer_than_the_answer() -> None:
    cache = Cache()
    cache.observe(KIND, _body(1))
    with cache.writing(KIND, NS, NAME):
        cache.observe(KIND, _body(3, edited="yes"))  # the write was rv 2; someone edited right after
    assert cache.record_write(KIND, _body(2)) is False
    assert cache.get(KIND, NS, NAME)["metadata"]["resourceVersion"] == "3"  # the newer body stays


def test_an_earlier_writes_late_echo_during_the_next_write_is_not_foreign() -> None:
    cache = Cache()
    cache.observe(KIND, _body(1))
    with cache.writing(KIND, NS, NAME):
        pass
    assert cache.record_write(KIND, _body(2))
    with cache.writing(KIND, NS, NAME):
        cache.observe(KIND, _body(2))  # the first write's echo, late
    assert cache.record_write(KIND, _body(3)) is True


def test_events_seen_during_a_write_that_failed_do_not_count_against_the_next_one() -> None:
    cache = Cache()
    cache.observe(KIND, _body(1))
    try:
        with cache.writing(KIND, NS, NAME):
            cache.observe(KIND, _body(2, poke="x"))
            raise ConnectionError("the write failed")
    except ConnectionError:
        pass
    # The failed pass is retried from the cache, which holds rv 2 already: nothing is left unseen.
    with cache.writing(KIND, NS, NAME):
        pass
    assert cache.record_write(KIND, _body(3, poke="x")) is True
