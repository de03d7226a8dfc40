"""Void ranges: the numbers a gateway's power cut left unaccounted for (its status's
`buffer_void`), settled in its sequence (collector/sequence.py) and, through a real broker and
influxd, in the events, the metrics and the end-to-end ack (collector/service.py).

Each case writes its arithmetic out. A tracker's missing numbers are open gap intervals;
`void` settles those of the range and the numbers above the highest seen.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collector import Collector, SequenceEvent, SequenceTracker, registry_for
from dynamo.devservices import wait_until
from telemetry.influx.client import InfluxClient
from telemetry.mqtt import connect, make_client
from telemetry.payload import Ack, Reading, Status, Telemetry, decode_ack, encode
from telemetry.site import Broker
from telemetry.topics import ack_topic, status_topic, telemetry_topic

T0 = 1_763_700_000_000
GAP, LATE, LOST, REPEAT = SequenceEvent.GAP, SequenceEvent.LATE, SequenceEvent.LOST, \
    SequenceEvent.REPEAT
RESET, VOID = SequenceEvent.RESET, SequenceEvent.VOID


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def events(tracker: SequenceTracker, seqs: list[int] | range, *,
           ts: int | None = None) -> list[tuple[SequenceEvent, int, int]]:
    """Every observation of these messages, in order; a message's time is T0 + seq seconds
    unless `ts` says."""
    return [(o.kind, o.seq, o.count) for seq in seqs
            for o in tracker.observe(site="s", gateway="g", seq=seq,
                                     ts=T0 + seq * 1000 if ts is None else ts)]


def void(tracker: SequenceTracker, first: int, last: int,
         ts: int | None = None) -> list[tuple[SequenceEvent, int, int]]:
    return [(o.kind, o.seq, o.count)
            for o in tracker.void(site="s", gateway="g", first=first, last=last, ts=ts)]


def missing(tracker: SequenceTracker) -> int:
    return tracker.missing_of(site="s", gateway="g")


# -- the tracker alone ---------------------------------------------------------------------------


def test_a_void_settles_the_missing_numbers_and_those_above_the_highest() -> None:
    tracker = SequenceTracker()
    # 100, then 111..120: the highest is 120 and 101..110 (10 numbers) are missing.
    assert events(tracker, [100, *range(111, 121)]) == [(GAP, 111, 10)]
    assert missing(tracker) == 10
    # void (105, 140): 121..140 above the highest are skipped, a gap of 20 (what message 141
    # would show); then missing 105..110 = 6 and 121..140 = 20 are void: 6 + 20 = 26.
    # 111..120 were received and stay so. Still missing: 101..104 = 4 (10 + 20 − 26).
    assert void(tracker, 105, 140) == [(GAP, 105, 20), (VOID, 105, 26)]
    assert missing(tracker) == 4
    # The gateway resumes at R = 141 = last + 1: no gap (the highest is 140 now).
    assert events(tracker, [141]) == []
    # 101..104, still held on the gateway's card, arrive: late, each filling the gap.
    assert events(tracker, [101, 102, 103, 104]) == [(LATE, n, 1) for n in (101, 102, 103, 104)]
    assert missing(tracker) == 0


def test_every_later_status_repeating_the_range_changes_nothing() -> None:
    tracker = SequenceTracker()
    events(tracker, [100, *range(111, 121)])
    assert void(tracker, 105, 140) == [(GAP, 105, 20), (VOID, 105, 26)]
    events(tracker, [141, 142])
    for _ in range(3):  # a status a minute, each with the same range
        assert void(tracker, 105, 140) == []
    assert missing(tracker) == 4  # 101..104, as before
    assert events(tracker, [143]) == []


def test_the_counts_are_the_same_whichever_comes_first_the_status_or_the_next_message() -> None:
    def run(order: list[str]) -> Counter[SequenceEvent]:
        tracker = SequenceTracker()
        found = events(tracker, [100, *range(111, 121)])
        for step in order:
            found += void(tracker, 105, 140) if step == "status" else events(tracker, [141])
        assert missing(tracker) == 4  # 101..104
        counts: Counter[SequenceEvent] = Counter()
        for kind, _seq, count in found:
            counts[kind] += count
        return counts

    # gap 10 (101..110) + 20 (121..140), void 26, either way; awaited = 30 − 26 = 4
    assert run(["status", "message"]) == run(["message", "status"]) == {GAP: 30, VOID: 26}


def test_a_voided_number_that_arrives_after_all_is_a_repeat_a_missing_one_late() -> None:
    """A message the broker had queued before the cut may still come: it is data (the
    service stores it like any other); the void settled its number, so it is a repeat."""
    tracker = SequenceTracker()
    events(tracker, [100, *range(111, 121)])
    void(tracker, 105, 140)
    # 107 was missing, then void; 130 was above the highest, then void; 115 was received.
    assert events(tracker, [107, 130, 115]) == [(REPEAT, 107, 1), (REPEAT, 130, 1),
                                                (REPEAT, 115, 1)]
    assert events(tracker, [103]) == [(LATE, 103, 1)]  # below the range: still awaited
    assert missing(tracker) == 3  # 101, 102, 104


def test_messages_queued_at_the_broker_before_the_cut_are_no_reset() -> None:
    """The collector was away: it had 0..50 (T0 .. T0 + 50 s); the gateway sent up to 130 (one
    a second) and the broker queued them; the cut voided 125..140. On its return the collector
    gets the retained status (T0 + 300 s) before the queue. 120 and 130 are over a minute newer
    than anything the collector had seen, and below the highest the void set."""
    tracker = SequenceTracker(reset_slack_ms=60_000)
    events(tracker, range(51))
    # gap 51..140 = 90; void 125..140 = 16; 51..124 (74) awaited
    assert void(tracker, 125, 140, ts=T0 + 300_000) == [(GAP, 125, 90), (VOID, 125, 16)]
    # older than the status: 120 late (no reset), 130 a repeat (its number settled)
    assert events(tracker, [120, 130]) == [(LATE, 120, 1), (REPEAT, 130, 1)]
    # The gateway's clock restarted behind (no RTC, before NTP): its status is stamped T0 +
    # 100 s, older than the queued 131 (T0 + 200 s) — a number of the void range is still no
    # reset, whatever its time.
    tracker = SequenceTracker(reset_slack_ms=60_000)
    events(tracker, range(51))
    void(tracker, 125, 140, ts=T0 + 100_000)
    assert events(tracker, [131], ts=T0 + 200_000) == [(REPEAT, 131, 1)]
    assert missing(tracker) == 74
    # a real reset (a wiped spool's 0, newer than anything) is still one
    assert events(tracker, [0], ts=T0 + 400_000) == [(RESET, 0, 1), (LOST, 0, 74)]


def test_numbers_between_the_highest_and_the_range_are_a_gap() -> None:
    """The collector had heard up to 50; the cut voided 60..80: 51..59 went to the card before
    the cut (the gateway holds them and will send them), so they are awaited, not void."""
    tracker = SequenceTracker()
    events(tracker, range(51))  # 0..50
    # gap 51..80 = 30 numbers (what message 81 would show); void 60..80 = 21; 51..59 = 9
    # (30 − 21) stay missing
    assert void(tracker, 60, 80) == [(GAP, 60, 30), (VOID, 60, 21)]
    assert missing(tracker) == 9
    assert events(tracker, [81, 55]) == [(LATE, 55, 1)]
    assert missing(tracker) == 8


def test_numbers_of_the_range_already_received_are_not_void() -> None:
    """The range runs from the last flush's mark: numbers the collector acknowledged since
    are in it too."""
    tracker = SequenceTracker()
    events(tracker, range(21))  # 0..20, nothing missing
    # gap 21..30 = 10, all of them void; 15..20 were received
    assert void(tracker, 15, 30) == [(GAP, 15, 10), (VOID, 15, 10)]
    assert void(tracker, 0, 5) == []  # a range the tracker has nothing missing in


def test_a_void_inside_a_gap_splits_it_and_the_parts_keep_their_age() -> None:
    clock = Clock()
    tracker = SequenceTracker(horizon_s=3600, clock=clock)
    assert events(tracker, [100, 201]) == [(GAP, 201, 100)]  # 101..200 missing
    clock.now_s += 3000
    # void (150, 160) = 11 numbers; missing now 101..149 (49) and 161..200 (40) = 89
    assert void(tracker, 150, 160) == [(VOID, 150, 11)]
    assert missing(tracker) == 89
    assert events(tracker, [149, 161, 150]) == [(LATE, 149, 1), (LATE, 161, 1),
                                                (REPEAT, 150, 1)]
    assert missing(tracker) == 87
    clock.now_s += 1000  # the gap opened 4000 s ago, over the horizon: both parts go, 87 lost
    assert events(tracker, [202]) == [(LOST, 202, 87)]
    assert missing(tracker) == 0


def test_a_void_across_many_gaps_touches_only_those_it_overlaps() -> None:
    tracker = SequenceTracker()
    # every other number: 0, 2, ..., 200 received, the 100 odd numbers 1..199 missing
    events(tracker, range(0, 201, 2))
    assert missing(tracker) == 100
    # void (50, 150): the odd numbers 51..149, (149 - 51) / 2 + 1 = 50, are void
    assert void(tracker, 50, 150) == [(VOID, 50, 50)]
    # left missing: 1..49 (25 odd numbers) and 151..199 (25)
    assert missing(tracker) == 50
    assert events(tracker, [49, 51, 151]) == [(LATE, 49, 1), (REPEAT, 51, 1), (LATE, 151, 1)]


def test_a_long_range_is_arithmetic_not_a_loop() -> None:
    tracker = SequenceTracker()
    events(tracker, [0, 10])  # 1..9 missing
    started = time.perf_counter()
    # gap 11..1_000_000_010 (1_000_000_000); void: 1..9 (9) and the gap: 1_000_000_009
    assert void(tracker, 1, 1_000_000_010) == [(GAP, 1, 1_000_000_000),
                                                (VOID, 1, 1_000_000_009)]
    assert time.perf_counter() - started < 0.1
    assert missing(tracker) == 0
    assert events(tracker, [1_000_000_011]) == []


def test_a_gap_the_void_opens_counts_against_the_bound_on_gaps() -> None:
    tracker = SequenceTracker(max_gaps=1)
    assert events(tracker, [0, 5]) == [(GAP, 5, 4)]  # 1..4 missing: one interval
    # void (10, 12): gap 6..12 (7), of which 10..12 (3) void; 6..9 stays missing, a second
    # interval: the lowest (1..4, 4 numbers) is given up
    assert void(tracker, 10, 12) == [(GAP, 10, 7), (VOID, 10, 3), (LOST, 10, 4)]
    assert missing(tracker) == 4


def test_an_unknown_gateway_remembers_nothing_its_first_message_starts_it() -> None:
    tracker = SequenceTracker()
    assert void(tracker, 105, 140) == []  # never heard of: nothing known, nothing kept
    assert tracker.missing == 0
    assert events(tracker, [141, 142]) == []  # starts at 141: no gap, no void
    # the next status repeats the range: below the tracker's floor (141), nothing to settle
    assert void(tracker, 105, 140) == []
    assert events(tracker, [120]) == [(SequenceEvent.STALE, 120, 1)]


def test_a_void_after_a_reset_applies_to_the_new_numbering_only() -> None:
    tracker = SequenceTracker()
    events(tracker, range(51))  # 0..50 at T0 .. T0 + 50 s
    assert void(tracker, 40, 60) == [(GAP, 40, 10), (VOID, 40, 10)]  # 51..60
    reset_ts = T0 + 200_000
    assert events(tracker, [0], ts=reset_ts) == [(RESET, 0, 1)]  # a wiped spool
    # A status older than the reset speaks of the old numbering: the service leaves it out.
    assert tracker.predates_numbering(site="s", gateway="g", ts=T0 + 150_000)
    assert not tracker.predates_numbering(site="s", gateway="g", ts=reset_ts + 1000)
    # The new numbering's own power cut: 1..30 received, then void (40, 60) again. The old
    # numbering's range is forgotten with it: gap 31..60 (30), void 40..60 (21), 31..39 (9)
    # missing.
    events(tracker, range(1, 31), ts=reset_ts + 1000)
    assert void(tracker, 40, 60) == [(GAP, 40, 30), (VOID, 40, 21)]
    assert missing(tracker) == 9
    # a gateway never reset, or never heard of: no status predates its numbering
    assert not tracker.predates_numbering(site="s", gateway="other", ts=0)


def test_a_range_must_be_ordered() -> None:
    tracker = SequenceTracker()
    events(tracker, [0])
    with pytest.raises(ValueError, match="first <= last"):
        tracker.void(site="s", gateway="g", first=5, last=4)


# -- through a real broker and influxd -----------------------------------------------------------


def _telemetry(site: str, seq: int) -> bytes:
    return encode(Telemetry(site=site, gateway="test-gw", equipment="dryer", device="m",
                            seq=seq, ts=T0 + seq * 1000,
                            readings=(Reading(sensor="dryer.p", value=float(seq), unit="W"),)))


def _status(site: str, ts: int) -> bytes:
    # The gateway holds 101..104 on its card (its floor) and none of 105..140 (the void).
    return encode(Status(site=site, gateway="test-gw", state="online", ts=ts, buffer_depth=4,
                         buffer_floor=101, buffer_void=(105, 140)))


def _metrics(collector: Collector) -> dict[str, float]:
    text = generate_latest(registry_for(collector)).decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if not sample.labels}


def _retained_ack(broker: Broker, site: str, until: Callable[[Ack], bool]) -> Ack:
    """The ack the broker holds for test-gw, read as the gateway reads it (its own topic)."""
    got: list[Ack] = []
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with lock:
            got.append(decode_ack(bytes(message.payload)))

    client = make_client(broker=broker, client_id=f"gw-ack-{uuid.uuid4().hex[:6]}")
    client.on_message = on_message
    connect(client, broker)
    try:
        wait_until(client.is_connected, timeout_s=15, what="the ack reader's connection",
                   interval_s=0.05)
        client.subscribe(ack_topic(site, "test-gw"), qos=1)

        def latest() -> Ack | None:
            with lock:
                return got[-1] if got else None

        wait_until(lambda: (ack := latest()) is not None and until(ack), timeout_s=15,
                   what="the retained ack passing the void range", interval_s=0.05)
        ack = latest()
        assert ack is not None
        return ack
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_status_void_range_is_settled_end_to_end(
        collector: Collector, gateway: mqtt.Client, influx: InfluxClient,
        broker_for: Callable[[str], Broker]) -> None:
    site = f"v{uuid.uuid4().hex[:8]}"
    topic = telemetry_topic(site, "test-gw", "dryer")

    def send(*seqs: int) -> None:
        for seq in seqs:
            gateway.publish(topic, _telemetry(site, seq), qos=1).wait_for_publish(timeout=10)

    def handled(count: int) -> None:
        wait_until(lambda: collector.counters.messages >= count and collector.queue_depth == 0,
                   timeout_s=15, what=f"{count} messages handled", interval_s=0.05)

    # Before the cut: 100, then 111..120 (live first): 101..110 missing, 10 numbers.
    send(100, *range(111, 121))
    handled(11)
    # After the cut, its birth: void (105, 140), floor 101.
    status_ts = T0 + 130_000
    gateway.publish(status_topic(site, "test-gw"), _status(site, status_ts),
                    qos=1).wait_for_publish(timeout=10)
    handled(12)
    # Numbering resumed at R = 141; the card's 101..104 follow; the next status repeats the
    # range; 107, which the broker had queued before the cut, arrives after all.
    send(141, 101, 102, 103, 104)
    gateway.publish(status_topic(site, "test-gw"), _status(site, T0 + 190_000),
                    qos=1).wait_for_publish(timeout=10)
    send(107)
    handled(19)

    def rows() -> list[tuple[int, str, int, int]]:
        found = influx.query(f"SELECT kind, seq, count FROM sequence_events WHERE site = '{site}'")
        return sorted((r["time"], r["kind"], r["seq"], r["count"]) for r in found[0].rows()) \
            if found else []

    # At the status's time: gap 121..140 (20, above the highest), then void 105..110 (6
    # missing) + 121..140 (20) = 26; the repeated status adds nothing; 101..104 are late; 107,
    # already settled by the void, a repeat.
    expected = sorted([(T0 + 111_000, "gap", 111, 10), (status_ts, "gap", 105, 20),
                       (status_ts, "void", 105, 26),
                       *((T0 + n * 1000, "late", n, 1) for n in (101, 102, 103, 104)),
                       (T0 + 107_000, "repeat", 107, 1)])
    wait_until(lambda: rows() == expected, timeout_s=15,
               what="the gap, the void, the late numbers and the repeat in InfluxDB",
               interval_s=0.1)
    # 107's reading is stored, never lost: it is data.
    stored = influx.query(f"SELECT value FROM readings WHERE site = '{site}' AND time = "
                          f"{(T0 + 107_000) * 1_000_000}")
    assert [r["value"] for r in stored[0].rows()] == [107.0]

    # The gauge of numbers missing: 10 + 20 (gaps) − 26 (void) − 4 (late) = 0.
    metrics = _metrics(collector)
    assert metrics["dynamo_collector_sequence_void_total"] == 26
    assert metrics["dynamo_collector_sequence_gap_messages_total"] == 30
    assert metrics["dynamo_collector_sequence_late_total"] == 4
    assert metrics["dynamo_collector_sequence_repeats_total"] == 1
    assert metrics["dynamo_collector_sequence_lost_total"] == 0
    assert metrics["dynamo_collector_sequence_missing"] == 0

    # The ack: floor 101 → upto 100; 101..104 stored, 105..140 void, 111..120 and 141 stored:
    # everything up to 141 is settled, nothing above it.
    ack = _retained_ack(broker_for("test-gw"), site, lambda a: a.upto >= 141)
    assert (ack.upto, ack.stored) == (141, ())
