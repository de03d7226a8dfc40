"""Electricity contracts written through the records service, over HTTP against the real api
and database: create, edit and void each leave an audit entry with the content before and
after; one Idempotency-Key creates one contract; a version is required to edit and a stale
one refused; the rules' errors point at their field; another site's token gets 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from api.access.tokens import TokenRole

CONTRACTS = "/sites/ariege/electricity-contracts"


def _contract(**overrides: Any) -> dict[str, Any]:
    return {"supplier": "Coopérative", "product": "Offre verte", "factor_kg_per_kwh": 0.02,
            "factor_source": "supplier's disclosure 2025", "guarantees_of_origin": True,
            "certificate_ref": "GO-1", "valid_from": "2026-01-01T00:00:00+01:00", **overrides}


def test_writes_are_audited_once_per_key_and_private_to_the_site(
        make_client: Callable[..., TestClient]) -> None:
    evaluator = make_client(role=TokenRole.EVALUATOR, site="ariege")
    key = {"Idempotency-Key": "contract-form-7f3a"}
    first = evaluator.post(CONTRACTS, json=_contract(), headers=key)
    assert first.status_code == 201, first.text
    # The same key sent again (a retry): the first contract back, no second one.
    again = evaluator.post(CONTRACTS, json=_contract(product="autre"), headers=key)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.json()["product"] == "Offre verte"
    assert len(evaluator.get(CONTRACTS).json()) == 1
    contract = f"{CONTRACTS}/{first.json()['id']}"

    # An edit names its version (If-Match here); without one it is refused, stale too.
    assert evaluator.put(contract, json=_contract(factor_kg_per_kwh=0.03)).status_code == 428
    edited = evaluator.put(contract, json=_contract(factor_kg_per_kwh=0.03),
                           headers={"If-Match": '"1"'})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2
    stale = evaluator.put(contract, json=_contract(notes="x", version=1))
    assert stale.status_code == 409 and stale.json()["detail"]["current_version"] == 2

    # Cross-field rules point at the field to fix.
    wrong = evaluator.post(CONTRACTS, json=_contract(valid_to="2025-06-01T00:00:00+02:00"))
    assert wrong.status_code == 422
    assert [(e["loc"], e["type"]) for e in wrong.json()["detail"]] == [
        (["body", "valid_to"], "end_before_start")]
    missing = evaluator.post(CONTRACTS, json=_contract(certificate_ref=None))
    assert [e["loc"] for e in missing.json()["detail"]] == [["body", "certificate_ref"]]

    assert evaluator.delete(contract, params={"reason": "saisi en double"}).status_code == 204

    history = evaluator.get(f"{contract}/history")
    assert history.status_code == 200, history.text
    entries = history.json()
    assert [(e["action"], e["actor"], e["via"]) for e in entries] == [
        ("create", "token:test evaluator", "api"), ("edit", "token:test evaluator", "api"),
        ("void", "token:test evaluator", "api")]
    assert all(e["site"] == "ariege" and e["equipment"] is None for e in entries)
    create, edit, void = entries
    assert create["before"] is None and create["after"]["factor_kg_per_kwh"] == 0.02
    assert create["after"]["version"] == 1 and create["after"]["certificate_ref"] == "GO-1"
    # valid_from is kept in UTC: 2026-01-01 00:00 at +01:00 is 2025-12-31 23:00 UTC.
    assert create["after"]["valid_from"] == "2025-12-31T23:00:00+00:00"
    assert (edit["before"]["factor_kg_per_kwh"], edit["after"]["factor_kg_per_kwh"]) == (
        0.02, 0.03)
    assert (edit["before"]["version"], edit["after"]["version"]) == (1, 2)
    assert void["before"]["voided_at"] is None and void["after"]["voided_at"] is not None
    assert void["after"]["void_reason"] == "saisi en double" and void["reason"] == (
        "saisi en double")

    # Another site's token sees neither the contract nor its history; an unknown id is 404.
    other = make_client(role=TokenRole.EVALUATOR, site="elsewhere")
    assert other.get(f"{contract}/history").status_code == 404
    assert other.get(contract).status_code == 404
    assert evaluator.get(f"{CONTRACTS}/999999/history").status_code == 404
    # Operators read the history, never write.
    operator = make_client(role=TokenRole.OPERATOR, site="ariege")
    assert operator.get(f"{contract}/history").status_code == 200
    assert operator.post(CONTRACTS, json=_contract()).status_code == 403
