"""The sequence tracker alone: gaps, late arrivals, repeats, losses and resets (no broker)."""

from __future__ import annotations

from collections import Counter

from collector import SequenceEvent, SequenceTracker

T0 = 1_763_700_000_000
GAP, LATE, LOST = SequenceEvent.GAP, SequenceEvent.LATE, SequenceEvent.LOST
REPEAT, RESET, STALE = SequenceEvent.REPEAT, SequenceEvent.RESET, SequenceEvent.STALE


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def events(tracker: SequenceTracker, seqs: list[int], *, gateway: str = "g",
           ts: int | None = None) -> list[tuple[SequenceEvent, int, int]]:
    """Every observation, in order; a message's time is T0 + seq seconds unless `ts` says."""
    out = []
    for seq in seqs:
        for o in tracker.observe(site="s", gateway=gateway, seq=seq,
                                 ts=T0 + seq * 1000 if ts is None else ts):
            out.append((o.kind, o.seq, o.count))
    return out


def totals(found: list[tuple[SequenceEvent, int, int]]) -> Counter[SequenceEvent]:
    counts: Counter[SequenceEvent] = Counter()
    for kind, _seq, count in found:
        counts[kind] += count
    return counts


def test_gaps_late_arrivals_and_repeats_are_told_apart() -> None:
    tracker = SequenceTracker()
    assert events(tracker, [10, 11, 14, 14, 12, 15, 11, 13, 16, 9]) == [
        (GAP, 14, 2),
        (REPEAT, 14, 1),
        (LATE, 12, 1),
        (REPEAT, 11, 1),
        (LATE, 13, 1),
        (STALE, 9, 1),  # below the first number this tracker saw: nothing known about it
    ]
    assert tracker.missing == 0
    # another gateway has its own numbering
    assert events(tracker, [500, 800], gateway="h") == [(GAP, 800, 299)]
    assert tracker.missing_of(site="s", gateway="h") == 299


def test_a_long_backlog_behind_live_data_fills_its_gap() -> None:
    """20 000 messages spooled during an outage arrive after the live ones, as the gateway's
    forwarder sends them: each round live first, then the next part of the backlog."""
    tracker = SequenceTracker()
    before = list(range(1000))
    backlog = list(range(1000, 21_000))
    live = list(range(21_000, 23_000))
    order = list(before)
    for part in range(20):
        order += live[part * 100:(part + 1) * 100] + backlog[part * 1000:(part + 1) * 1000]
    found = events(tracker, order)
    assert found[0] == (GAP, 21_000, 20_000)
    assert totals(found) == {GAP: 20_000, LATE: 20_000}
    assert tracker.missing == 0
    # repeats are recognised at any distance below the highest, and reported nothing else
    assert events(tracker, [5, 1000, 15_000, 22_999]) == [
        (REPEAT, 5, 1), (REPEAT, 1000, 1), (REPEAT, 15_000, 1), (REPEAT, 22_999, 1)]


def test_a_backlog_thinned_by_a_full_spool_counts_what_never_comes_as_lost() -> None:
    tracker = SequenceTracker(max_gaps=100)
    kept = [seq for seq in range(1, 20_001) if seq % 10]  # the spool thinned every tenth
    found = events(tracker, [0, 20_001, *kept])
    counts = totals(found)
    assert counts[GAP] == 20_000 and counts[LATE] == len(kept) == 18_000
    # 2000 holes: beyond 100 open at once the lowest, behind the backlog, are given up
    assert counts[LOST] + tracker.missing == 2000
    assert counts[LOST] == 1900 and tracker.missing == 100
    assert counts[RESET] == counts[REPEAT] == 0


def test_gaps_open_beyond_the_horizon_are_lost_and_later_arrivals_stale() -> None:
    clock = Clock()
    tracker = SequenceTracker(horizon_s=3600, clock=clock)
    assert events(tracker, [0, 1, 5]) == [(GAP, 5, 3)]
    clock.now_s += 3000
    assert events(tracker, [2, 6]) == [(LATE, 2, 1)]
    clock.now_s += 1000  # the gap opened 4000 s ago: 3 and 4 are given up
    assert events(tracker, [7]) == [(LOST, 7, 2)]
    assert tracker.missing == 0
    assert events(tracker, [3, 6]) == [(STALE, 3, 1), (REPEAT, 6, 1)]


def test_a_wiped_spool_restarting_at_zero_is_a_reset() -> None:
    tracker = SequenceTracker()
    events(tracker, [100, 101, 105])
    # the new spool's first message is newer than anything seen: not a late or repeated one
    assert events(tracker, [0], ts=T0 + 200_000) == [(RESET, 0, 1), (LOST, 0, 3)]
    assert tracker.missing == 0
    assert events(tracker, [1, 2, 4], ts=T0 + 201_000) == [(GAP, 4, 1)]


def test_a_reset_whose_first_messages_were_missed_is_seen_within_the_slack() -> None:
    tracker = SequenceTracker(reset_slack_ms=60_000)
    events(tracker, list(range(100)))
    last = T0 + 99_000
    # numbers 3 and 4 of the new spool: look like repeats while their time is within the slack
    assert events(tracker, [3], ts=last + 30_000) == [(REPEAT, 3, 1)]
    assert events(tracker, [4], ts=last + 90_000) == [(RESET, 4, 1)]
    assert events(tracker, [5], ts=last + 91_000) == []


def test_a_late_message_whose_time_crosses_a_newer_one_is_no_reset() -> None:
    """Two devices of one gateway polled at once: the lower number may carry the later time."""
    tracker = SequenceTracker()
    events(tracker, [10], ts=T0)
    assert events(tracker, [12], ts=T0 + 1000) == [(GAP, 12, 1)]
    assert events(tracker, [11], ts=T0 + 1500) == [(LATE, 11, 1)]


def test_memory_stays_bounded_under_any_pattern() -> None:
    tracker = SequenceTracker(max_gaps=50)
    found = events(tracker, [seq for seq in range(0, 200_000, 2)])  # every other one missing
    counts = totals(found)
    assert counts[GAP] == 99_999
    assert tracker.missing == 50 and counts[LOST] == 99_999 - 50
