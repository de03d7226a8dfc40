"""A clock that is not synchronised is said so, in the status and in every reading."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from gwkit import (
    ModbusTestServer,
    Subscriber,
    broker_settings,
    float_words,
    meter_device,
    running,
    write_config,
)

from dynamo.devservices import MosquittoProcess, wait_until
from gateway.clock import clock_synced, kernel_clock_synced
from telemetry.loader import load_gateway_config

JAN_2026_S = 1_767_225_600


def test_the_clock_check_combines_plausibility_and_the_kernel() -> None:
    assert clock_synced(now_s=JAN_2026_S, kernel=lambda: True)
    assert not clock_synced(now_s=JAN_2026_S, kernel=lambda: False)
    # A Pi booting without RTC nor network: 1970, or a fake-hwclock date years back.
    assert not clock_synced(now_s=86_400, kernel=lambda: True)
    assert not clock_synced(now_s=1_600_000_000, kernel=lambda: None)
    # Where the kernel cannot tell (not Linux), a plausible date is trusted.
    assert clock_synced(now_s=JAN_2026_S, kernel=lambda: None)
    assert kernel_clock_synced() in (True, False, None)


def test_an_unsynchronised_clock_flags_readings_and_status_until_it_syncs(
        tmp_path: Path, mosquitto: MosquittoProcess,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    site = f"c{uuid.uuid4().hex[:10]}"
    meter = modbus_server()
    meter.set_registers("input", 72, float_words(7.0))
    config = load_gateway_config(write_config(
        tmp_path / "gw.yaml", site=site, broker=broker_settings(mosquitto, "test-gw"),
        spool_dir=tmp_path / "spool", devices=[meter_device(meter, interval=0.2)],
        extra={"status_interval_s": 1}))
    synced = [False]
    subscriber = Subscriber(broker=broker_settings(mosquitto, "collector"),
                            topic=f"dynamo/v1/{site}/#")
    try:
        with running(config, clock=lambda: synced[0]):
            wait_until(lambda: len(subscriber.telemetry()) >= 3, timeout_s=30, what="telemetry")
            assert all(m["clock_synced"] is False for m in subscriber.telemetry())
            assert subscriber.statuses()[-1]["clock_synced"] is False
            synced[0] = True  # NTP answered
            wait_until(lambda: subscriber.telemetry()[-1]["clock_synced"] is True
                       and subscriber.statuses()[-1]["clock_synced"] is True, timeout_s=30,
                       what="readings and status to say the clock is synchronised")
    finally:
        subscriber.close()


def test_readings_stamped_before_the_clock_was_set_are_corrected_in_the_spool(
        tmp_path: Path, own_broker: MosquittoProcess,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    meter = modbus_server()
    meter.set_registers("input", 72, float_words(9.0))
    config = load_gateway_config(write_config(
        tmp_path / "gw.yaml", broker=broker_settings(own_broker, "test-gw"),
        spool_dir=tmp_path / "spool", devices=[meter_device(meter, interval=0.2)],
        extra={"status_interval_s": 1}))
    subscriber = Subscriber(broker=broker_settings(own_broker, "collector"))
    wait_until(subscriber.subscribed.is_set, timeout_s=30, what="the subscription")
    # Boot without network: no uplink, no NTP, and fake-hwclock's date a day behind.
    own_broker.stop()
    behind_s = [86_400.0]
    synced = [False]
    try:
        with running(config, clock=lambda: synced[0],
                     now=lambda: time.time() - behind_s[0]) as gateway:
            wait_until(lambda: gateway.spool.next_seq >= 8, timeout_s=30,
                       what="polls spooled while offline")
            behind_s[0], synced[0] = 0.0, True  # the network came back: NTP set the clock
            wait_until(lambda: gateway.restamped >= 8, timeout_s=30,
                       what="the spooled messages re-stamped")
            own_broker.start()
            wait_until(lambda: len(subscriber.telemetry()) >= gateway.restamped + 3,
                       timeout_s=60, what="the backlog at the subscriber")
        now_ms = time.time() * 1000
        stamps = [m["ts"] for m in subscriber.telemetry()]
        # Nothing a day old: every message is within the test's own duration.
        assert all(now_ms - 120_000 < ts <= now_ms for ts in stamps), stamps
        # The corrected ones still say they were stamped by an unsynchronised clock.
        assert sum(m["clock_synced"] is False for m in subscriber.telemetry()) >= 8
    finally:
        subscriber.close()
