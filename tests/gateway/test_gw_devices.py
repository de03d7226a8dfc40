"""Device robustness on real pymodbus servers: a failing device never silences another."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from telemetry.loader import load_gateway_config


def _of(subscriber: Subscriber, device: str) -> list[dict[str, Any]]:
    return [m for m in subscriber.telemetry() if m["device"] == device]


def _meter(make: Callable[..., ModbusTestServer], energy: float) -> ModbusTestServer:
    server = make()
    server.set_registers("input", 72, float_words(energy))
    server.set_registers("input", 12, float_words(100.0))
    return server


def test_a_dead_and_a_hung_device_leave_the_others_on_time_and_recover(
        tmp_path: Path, mosquitto: MosquittoProcess,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    site = f"d{uuid.uuid4().hex[:10]}"
    steady, dying, hanging = (_meter(modbus_server, e) for e in (1.0, 2.0, 3.0))
    config = load_gateway_config(write_config(
        tmp_path / "gw.yaml", site=site, broker=broker_settings(mosquitto, "test-gw"),
        spool_dir=tmp_path / "spool", devices=[
            meter_device(steady, device_id="steady", interval=0.2),
            meter_device(dying, device_id="dying", interval=0.2),
            # A hung device costs its own timeout × (1 + retries) per poll: 4 s here.
            meter_device(hanging, device_id="hanging", interval=0.2, timeout_s=2.0,
                         retries=1, backoff_max_s=0.5),
        ]))
    subscriber = Subscriber(broker=broker_settings(mosquitto, "collector"),
                            topic=f"dynamo/v1/{site}/#")
    try:
        with running(config) as gateway:
            wait_until(lambda: all(len(_of(subscriber, d)) >= 3 for d in
                                   ("steady", "dying", "hanging")), timeout_s=30,
                       what="every device polled")
            dying.stop()  # the cable is pulled
            hanging.silent = True  # the converter still accepts, and never answers
            wait_until(lambda: gateway.health["dying"] == "no connection"
                       and gateway.health["hanging"] == "timeout", timeout_s=30,
                       what="both failures in the gateway's health")
            mark = len(_of(subscriber, "steady"))
            wait_until(lambda: len(_of(subscriber, "steady")) >= mark + 20, timeout_s=30,
                       what="the steady device's polls during the failures")
            steady_ts = [m["ts"] for m in _of(subscriber, "steady")[mark:]]
            gaps = [b - a for a, b in itertools.pairwise(steady_ts)]
            # Had the others blocked it, gaps of ≥ 2000 ms (the hung device's timeout) show.
            assert max(gaps) < 1500, gaps
            assert all(m["readings"][0]["quality"] == "good"
                       for m in _of(subscriber, "steady"))
            # The failing devices' readings go out `bad`, with the reason.
            dead = [r for m in _of(subscriber, "dying") for r in m["readings"]
                    if r["quality"] == "bad"]
            assert dead and {r["reason"] for r in dead} == {"no connection"}
            wait_until(lambda: any(r.get("reason") == "timeout" for m in
                                   _of(subscriber, "hanging") for r in m["readings"]),
                       timeout_s=30, what="bad readings with reason timeout")
            # ... and the status says so.
            wait_until(lambda: any(s.get("devices", {}).get("dying") == "no connection"
                                   for s in subscriber.statuses()), timeout_s=30,
                       what="the dead device's health in a status message")
            # Plugged back in (same port): the device recovers by itself, within its back-off.
            dying.start()
            hanging.silent = False
            wait_until(lambda: gateway.health["dying"] == "ok", timeout_s=30,
                       what="the dead device to recover")
            mark = len(_of(subscriber, "dying"))
            wait_until(lambda: any(m["readings"][0].get("value") == 2.0
                                   for m in _of(subscriber, "dying")[mark:]), timeout_s=30,
                       what="good readings again from the recovered device")
    finally:
        subscriber.close()


def test_busy_answers_are_retried_and_reported_when_retries_run_out(
        tmp_path: Path, mosquitto: MosquittoProcess,
        modbus_server: Callable[..., ModbusTestServer]) -> None:
    site = f"b{uuid.uuid4().hex[:10]}"
    patient, impatient = (_meter(modbus_server, e) for e in (5.0, 6.0))
    config = load_gateway_config(write_config(
        tmp_path / "gw.yaml", site=site, broker=broker_settings(mosquitto, "test-gw"),
        spool_dir=tmp_path / "spool", devices=[
            meter_device(patient, device_id="patient", interval=0.3, retries=2),
            meter_device(impatient, device_id="impatient", interval=0.3, retries=0),
        ]))
    subscriber = Subscriber(broker=broker_settings(mosquitto, "collector"),
                            topic=f"dynamo/v1/{site}/#")
    try:
        with running(config):
            wait_until(lambda: len(_of(subscriber, "patient")) >= 2
                       and len(_of(subscriber, "impatient")) >= 2, timeout_s=30,
                       what="both devices polled")
            marks = {d: len(_of(subscriber, d)) for d in ("patient", "impatient")}
            patient.busy_answers = impatient.busy_answers = 2
            wait_until(lambda: all(len(_of(subscriber, d)) >= marks[d] + 4 for d in marks),
                       timeout_s=30, what="polls after the busy spell")
        patient_after = _of(subscriber, "patient")[marks["patient"]:]
        impatient_after = _of(subscriber, "impatient")[marks["impatient"]:]
        # Two busy answers, two retries: every poll of the patient device still succeeds.
        assert all(r["quality"] == "good" for m in patient_after for r in m["readings"])
        assert patient.busy_answers == 0, "the busy answers were never asked for"
        reasons = {r.get("reason") for m in impatient_after for r in m["readings"]}
        assert "modbus exception 6 (device busy)" in reasons
        assert any(m["readings"][0]["quality"] == "good" for m in impatient_after)
    finally:
        subscriber.close()
