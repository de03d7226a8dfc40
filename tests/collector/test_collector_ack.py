"""The end-to-end acknowledgement's bookkeeping (collector/acks.py), case by case.

Each case writes out what the gateway must be told, worked by hand from the rule "every seq <=
upto is stored or no longer held by the gateway; each [first, last] of `stored` is stored".
"""

from __future__ import annotations

from collector.acks import AckTracker
from telemetry.payload import Ack, decode_ack
from telemetry.topics import ack_topic, parse_ack_topic

SITE, GW = "s", "gw"


def _tracker(max_intervals: int = 256) -> tuple[AckTracker, list[tuple[str, bytes]]]:
    sent: list[tuple[str, bytes]] = []

    def publish(topic: str, payload: bytes) -> bool:
        sent.append((topic, payload))
        return True

    return AckTracker(publish=publish, max_intervals=max_intervals, clock=lambda: 1.8e9), sent


def _told(tracker: AckTracker) -> tuple[int, tuple[tuple[int, int], ...]]:
    ack = tracker.ack_of(SITE, GW)
    assert ack is not None
    return ack.upto, ack.stored


def _store(tracker: AckTracker, *seqs: int, epoch: int = 0) -> None:
    tracker.stored((SITE, GW, epoch, s) for s in seqs)


def test_in_order_messages_move_the_watermark() -> None:
    tracker, _ = _tracker()
    _store(tracker, 0, 1, 2, 3)
    assert _told(tracker) == (3, ())


def test_live_first_then_backlog_fills_the_gap() -> None:
    # Stored 0..2, then the outage's live messages 10, 11, then the backlog 3..9 in order.
    tracker, _ = _tracker()
    _store(tracker, 0, 1, 2, 10, 11)
    assert _told(tracker) == (2, ((10, 11),))  # 3..9 not stored: the gateway keeps them
    _store(tracker, 3, 4, 5)
    assert _told(tracker) == (5, ((10, 11),))
    _store(tracker, 6, 7, 8, 9)  # 9 touches 10: the interval is swallowed, upto = 11
    assert _told(tracker) == (11, ())


def test_intervals_merge_when_they_touch() -> None:
    tracker, _ = _tracker()
    _store(tracker, 5, 7)  # nothing below 5 stored: upto stays -1
    assert _told(tracker) == (-1, ((5, 5), (7, 7)))
    _store(tracker, 6)  # 5, 6, 7 contiguous
    assert _told(tracker) == (-1, ((5, 7),))
    _store(tracker, 9, 9, 8)  # a repeat changes nothing; 8 bridges to 9
    assert _told(tracker) == (-1, ((5, 9),))


def test_the_gateways_floor_passes_the_holes_thinning_left() -> None:
    # Stored 0, 1, then (a thinned backlog) 5 and 9; the gateway says it holds nothing below 9.
    tracker, _ = _tracker()
    _store(tracker, 0, 1, 5, 9)
    assert _told(tracker) == (1, ((5, 5), (9, 9)))
    tracker.floor(SITE, GW, 9)  # seqs <= 8 are gone from the spool: upto = 8, then 9 joins
    assert _told(tracker) == (9, ())


def test_a_floor_below_the_watermark_changes_nothing() -> None:
    tracker, _ = _tracker()
    _store(tracker, 0, 1, 2)
    tracker.floor(SITE, GW, 1)
    assert _told(tracker) == (2, ())


def test_a_void_range_settles_the_watermark_once_everything_below_is_stored() -> None:
    # Stored 0..100 and 111..120; the cut voided 105..140 (the gateway holds none of them) and
    # the card still holds 101..104.
    tracker, _ = _tracker()
    _store(tracker, *range(101), *range(111, 121))
    assert _told(tracker) == (100, ((111, 120),))
    tracker.void(SITE, GW, 105, 140)  # 105..140 settled, merged with 111..120: one interval
    assert _told(tracker) == (100, ((105, 140),))  # 101..104 not stored: the watermark waits
    _store(tracker, 101, 102, 103)
    assert _told(tracker) == (103, ((105, 140),))
    _store(tracker, 104)  # 104 touches 105: upto = 140
    assert _told(tracker) == (140, ())
    _store(tracker, 141)  # R, the first number after the cut
    assert _told(tracker) == (141, ())


def test_a_void_range_repeated_by_every_status_publishes_nothing_new() -> None:
    tracker, sent = _tracker()
    _store(tracker, 0, 1, 2)
    tracker.void(SITE, GW, 10, 20)
    assert tracker.flush() == 1
    assert _told(tracker) == (2, ((10, 20),))
    tracker.void(SITE, GW, 10, 20)  # the next status: the same range
    tracker.void(SITE, GW, 12, 15)  # inside what is settled
    assert tracker.flush() == 0 and len(sent) == 1
    _store(tracker, *range(3, 10))
    tracker.void(SITE, GW, 10, 20)  # below the watermark now (upto 20)
    assert tracker.flush() == 1 and _told(tracker) == (20, ())


def test_a_long_void_range_is_one_interval() -> None:
    # 1_000_000 numbers: one interval, not a million; it bridges 5 and 1_000_006.
    tracker, _ = _tracker()
    _store(tracker, 0, 1, 2, 3, 4, 5, 1_000_006)
    tracker.void(SITE, GW, 6, 1_000_005)
    assert _told(tracker) == (1_000_006, ())


def test_a_void_after_a_reset_applies_to_the_new_numbering() -> None:
    tracker, _ = _tracker()
    _store(tracker, 0, 1, 2)
    tracker.reset(SITE, GW)
    tracker.void(SITE, GW, 3, 5)  # nothing of the new numbering stored yet: upto −1
    assert _told(tracker) == (-1, ((3, 5),))
    _store(tracker, 0, 1, 2, epoch=1)  # 2 touches 3: upto = 5
    assert _told(tracker) == (5, ())


def test_only_the_newest_intervals_are_kept() -> None:
    # Stored 10, 12, 14, 16 with a bound of 2 intervals: the two highest stay (14, 16).
    tracker, _ = _tracker(max_intervals=2)
    _store(tracker, 10, 12, 14, 16)
    assert _told(tracker) == (-1, ((14, 14), (16, 16)))


def test_a_reset_forgets_the_old_numbering_and_ignores_its_late_writes() -> None:
    tracker, _ = _tracker()
    _store(tracker, 0, 1, 2, 3, 4)
    assert tracker.epoch(SITE, GW) == 0
    tracker.reset(SITE, GW)  # a wiped spool: numbering starts at 0 again
    assert tracker.epoch(SITE, GW) == 1
    assert _told(tracker) == (-1, ())
    _store(tracker, 5, epoch=0)  # a write of the old numbering finishing late: ignored
    _store(tracker, 0, epoch=1)
    assert _told(tracker) == (0, ())


def test_seed_restores_what_a_previous_run_published() -> None:
    tracker, sent = _tracker()
    tracker.seed(Ack(site=SITE, gateway=GW, upto=41, stored=((50, 52),)))
    assert _told(tracker) == (41, ((50, 52),))
    assert tracker.flush() == 0 and sent == []  # the broker already holds that one
    _store(tracker, 42)
    assert _told(tracker) == (42, ((50, 52),))
    tracker.reset(SITE, GW)
    tracker.seed(Ack(site=SITE, gateway=GW, upto=99))  # after a reset, an old ack says nothing
    assert _told(tracker) == (-1, ())


def test_flush_publishes_each_changed_gateway_once_retained_topic() -> None:
    tracker, sent = _tracker()
    _store(tracker, 0, 1, 2)
    tracker.stored([("t", "other", 0, 0)])
    assert tracker.flush() == 2
    assert tracker.flush() == 0  # nothing changed since
    topics = sorted(topic for topic, _ in sent)
    assert topics == ["dynamo/v1/s/ack/gw", "dynamo/v1/t/ack/other"]
    ack = decode_ack(dict(sent)["dynamo/v1/s/ack/gw"])
    assert (ack.site, ack.gateway, ack.upto, ack.stored) == (SITE, GW, 2, ())
    # A repeat means the gateway never heard of it (an ack lost in a broker crash): told again.
    _store(tracker, 1)
    assert tracker.flush() == 1


def test_an_unpublishable_ack_stays_due() -> None:
    ok = [False]
    sent: list[str] = []

    def publish(topic: str, _payload: bytes) -> bool:
        if ok[0]:
            sent.append(topic)
        return ok[0]

    tracker = AckTracker(publish=publish)
    tracker.stored([(SITE, GW, 0, 0)])
    assert tracker.flush() == 0
    ok[0] = True
    assert tracker.flush() == 1 and sent == ["dynamo/v1/s/ack/gw"]


def test_ack_topic_is_below_the_reserved_pseudo_gateway() -> None:
    assert ack_topic("ariege", "dryer-gw") == "dynamo/v1/ariege/ack/dryer-gw"
    assert parse_ack_topic("dynamo/v1/ariege/ack/dryer-gw") == ("ariege", "dryer-gw")
    assert parse_ack_topic("dynamo/v1/ariege/dryer-gw/status") is None
    assert parse_ack_topic("dynamo/v1/ariege/ack/dryer-gw/x") is None
