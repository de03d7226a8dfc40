"""The record kinds the api and the console serve, as data: one frozen description per kind.

A description says where the kind lives (url segment, table), how it is checked (its pydantic
input model: the same rules for the api and the console), who may write it, which equipment
it belongs to, and for each field what an operator sees: label in French and English, HTML
input type with its step and bounds, unit, whether it is required, and for which equipment
kinds it is shown (a dryer batch has masses and moistures, a packaging run units and a lot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel

from api.access.tokens import TokenRole
from api.records.contracts import ElectricityContract
from api.records.tables import (
    Baseline,
    Batch,
    Campaign,
    ManualActivity,
    MaterialLot,
    Record,
    RefrigerantTopUp,
)
from api.schemas import (
    MANUAL_CARRIERS,
    BaselineIn,
    BaselineOut,
    BatchIn,
    BatchOut,
    CampaignIn,
    CampaignOut,
    ElectricityContractIn,
    ElectricityContractOut,
    ManualActivityIn,
    ManualActivityOut,
    MaterialLotIn,
    MaterialLotOut,
    RefrigerantTopUpIn,
    RefrigerantTopUpOut,
)
from telemetry.site import EquipmentKind

InputType = Literal["text", "number", "datetime-local", "select", "textarea", "checkbox"]
# Where the choices of a select come from when they are not fixed: the equipment's live
# campaigns or material lots, the GWP table's refrigerants, the factors per kg (materials) or
# every factor (baselines).
Reference = Literal["campaigns", "material_lots", "refrigerants", "factors_per_kg", "factors"]
DRYER, FREEZER, PACKAGING = EquipmentKind.DRYER, EquipmentKind.FREEZER, EquipmentKind.PACKAGING
_ALL = frozenset({DRYER, FREEZER, PACKAGING})


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    fr: str
    en: str

    def label(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a record as an operator fills it in."""

    name: str  # the input model's field
    fr: str
    en: str
    input: InputType
    required: bool = False
    unit: str | None = None
    step: float | None = None
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: tuple[Choice, ...] = ()
    ref: Reference | None = None
    # Shown only for these equipment kinds (None: every kind the record applies to).
    equipment_kinds: frozenset[EquipmentKind] | None = None
    # Shown only when another field has one of these values, e.g. ("kind", {"fuel_delivery"}).
    when: tuple[str, frozenset[str]] | None = None
    help_fr: str = ""
    help_en: str = ""

    def label(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en

    def help(self, lang: str) -> str:
        return self.help_fr if lang == "fr" else self.help_en


@dataclass(frozen=True, slots=True)
class RecordKind:
    """One kind of record: its storage, its rules, its writers and its fields."""

    name: str  # key of KINDS, the table's name and the audit trail's `kind`
    slug: str  # url segment under /sites/{site}/equipment/{equipment}/ (or /baselines)
    table: type[Record]
    input: type[BaseModel]
    output: type[BaseModel]
    writer: TokenRole  # the role that may write it (admin always may)
    equipment_kinds: frozenset[EquipmentKind]  # empty: not per equipment (baselines)
    fr: str  # plural label
    en: str
    fields: tuple[FieldSpec, ...]
    order_by: str  # the column lists are sorted on (oldest first)
    # Labels of the kind for one equipment kind (a packaging "batch" is a run).
    fr_for: dict[EquipmentKind, str] = field(default_factory=dict)
    en_for: dict[EquipmentKind, str] = field(default_factory=dict)
    # A record of a site, of none of its equipment (electricity contracts); with
    # `equipment_kinds` empty and this False, a record of nobody (baselines).
    per_site: bool = False

    @property
    def per_equipment(self) -> bool:
        return bool(self.equipment_kinds)

    def label(self, lang: str, equipment_kind: EquipmentKind | None = None) -> str:
        labels = self.fr_for if lang == "fr" else self.en_for
        if equipment_kind is not None and equipment_kind in labels:
            return labels[equipment_kind]
        return self.fr if lang == "fr" else self.en

    def fields_for(self, equipment_kind: EquipmentKind | None) -> list[FieldSpec]:
        """The fields shown for a record of an equipment of that kind."""
        return [f for f in self.fields if equipment_kind is None or f.equipment_kinds is None
                or equipment_kind in f.equipment_kinds]


def _moment(name: str, fr: str, en: str, *, required: bool = True,
            when: tuple[str, frozenset[str]] | None = None) -> FieldSpec:
    return FieldSpec(name=name, fr=fr, en=en, input="datetime-local", required=required,
                     when=when, help_fr="heure locale du site", help_en="the site's local time")


def _measure(name: str, fr: str, en: str, *, unit: str, max: float,
             kinds: frozenset[EquipmentKind], help_fr: str = "",
             help_en: str = "") -> FieldSpec:
    return FieldSpec(name=name, fr=fr, en=en, input="number", unit=unit, step=0.1, min=0,
                     max=max, equipment_kinds=kinds, help_fr=help_fr, help_en=help_en)


_NOTES = FieldSpec(name="notes", fr="Remarques", en="Notes", input="textarea", max_length=5000)

CAMPAIGNS = RecordKind(
    name="campaigns", slug="campaigns", table=Campaign, input=CampaignIn, output=CampaignOut,
    writer=TokenRole.OPERATOR, equipment_kinds=_ALL, fr="Campagnes", en="Campaigns",
    order_by="started_at",
    fields=(
        FieldSpec(name="name", fr="Nom", en="Name", input="text", required=True,
                  max_length=200),
        _moment("started_at", "Début", "Start"),
        _moment("ended_at", "Fin", "End", required=False),
        _NOTES,
    ))

_MASSES = frozenset({DRYER, FREEZER})

BATCHES = RecordKind(
    name="batches", slug="batches", table=Batch, input=BatchIn, output=BatchOut,
    writer=TokenRole.OPERATOR, equipment_kinds=_ALL, fr="Lots", en="Batches",
    fr_for={DRYER: "Lots de séchage", FREEZER: "Lots de surgélation",
            PACKAGING: "Productions de conditionnement"},
    en_for={DRYER: "Drying batches", FREEZER: "Freezing batches", PACKAGING: "Packaging runs"},
    order_by="started_at",
    fields=(
        FieldSpec(name="product", fr="Produit / lot", en="Product / lot", input="text",
                  required=True, max_length=200),
        FieldSpec(name="campaign_id", fr="Campagne", en="Campaign", input="select",
                  ref="campaigns"),
        _moment("started_at", "Début", "Start"),
        _moment("ended_at", "Fin", "End"),
        _measure("mass_in_kg", "Masse entrée", "Mass in", unit="kg", max=1e7, kinds=_MASSES),
        _measure("mass_out_kg", "Masse sortie", "Mass out", unit="kg", max=1e7, kinds=_MASSES),
        # Below 100 %: the water removed divides by 1 − moisture out.
        _measure("moisture_in_pct", "Humidité entrée", "Moisture in", unit="%", max=99.9,
                 kinds=frozenset({DRYER}), help_fr="base humide", help_en="wet basis"),
        _measure("moisture_out_pct", "Humidité sortie", "Moisture out", unit="%", max=99.9,
                 kinds=frozenset({DRYER}), help_fr="base humide", help_en="wet basis"),
        FieldSpec(name="units", fr="Unités produites", en="Units produced", input="number",
                  unit="unités", step=1, min=0, max=1e9, equipment_kinds=frozenset({PACKAGING})),
        FieldSpec(name="material_lot_id", fr="Lot de matériau", en="Material lot",
                  input="select", ref="material_lots", equipment_kinds=frozenset({PACKAGING})),
        _NOTES,
    ))

MATERIAL_LOTS = RecordKind(
    name="material_lots", slug="material-lots", table=MaterialLot, input=MaterialLotIn,
    output=MaterialLotOut, writer=TokenRole.OPERATOR, equipment_kinds=frozenset({PACKAGING}),
    fr="Lots de matériaux", en="Material lots", order_by="received_at",
    fields=(
        FieldSpec(name="material", fr="Matériau", en="Material", input="text", required=True,
                  max_length=63, help_fr="identifiant, par exemple carton",
                  help_en="an identifier, e.g. cardboard"),
        FieldSpec(name="supplier", fr="Fournisseur", en="Supplier", input="text",
                  max_length=200),
        FieldSpec(name="mass_kg", fr="Masse", en="Mass", input="number", required=True,
                  unit="kg", step=0.1, min=0.1, max=1e7),
        FieldSpec(name="factor_id", fr="Facteur d'émission", en="Emission factor",
                  input="select", required=True, ref="factors_per_kg"),
        _moment("received_at", "Reçu le", "Received"),
    ))

REFRIGERANT_TOP_UPS = RecordKind(
    name="refrigerant_top_ups", slug="refrigerant-top-ups", table=RefrigerantTopUp,
    input=RefrigerantTopUpIn, output=RefrigerantTopUpOut, writer=TokenRole.OPERATOR,
    equipment_kinds=frozenset({FREEZER}), fr="Appoints de fluide frigorigène",
    en="Refrigerant top-ups", order_by="at",
    fields=(
        FieldSpec(name="refrigerant", fr="Fluide", en="Refrigerant", input="select",
                  required=True, ref="refrigerants"),
        FieldSpec(name="mass_kg", fr="Masse ajoutée", en="Mass added", input="number",
                  required=True, unit="kg", step=0.001, min=0.001, max=10000),
        _moment("at", "Date de l'intervention", "Intervention date"),
        FieldSpec(name="intervention_ref", fr="Référence de l'intervention",
                  en="Intervention reference", input="text", max_length=100,
                  help_fr="fiche d'intervention (registre F-gaz)",
                  help_en="intervention sheet (F-gas logbook)"),
        FieldSpec(name="technician", fr="Technicien", en="Technician", input="text",
                  max_length=200),
        _NOTES,
    ))

_DELIVERY = ("kind", frozenset({"fuel_delivery"}))
_READING = ("kind", frozenset({"meter_reading"}))
_CARRIER_LABELS = {
    "fuel_oil": ("Fioul domestique", "Heating oil"), "propane": ("Propane", "Propane"),
    "wood_pellets": ("Granulés de bois", "Wood pellets"),
    "wood_chips": ("Plaquettes de bois", "Wood chips"),
    "electricity": ("Électricité", "Electricity"), "natural_gas": ("Gaz naturel", "Natural gas"),
}
_CARRIERS = tuple(dict.fromkeys(c for carriers in MANUAL_CARRIERS.values() for c in carriers))

MANUAL_ACTIVITIES = RecordKind(
    name="manual_activities", slug="manual-activities", table=ManualActivity,
    input=ManualActivityIn, output=ManualActivityOut, writer=TokenRole.OPERATOR,
    equipment_kinds=_ALL, fr="Livraisons et relevés manuels",
    en="Deliveries and manual readings", order_by="id",
    fields=(
        FieldSpec(name="kind", fr="Type de saisie", en="Entry", input="select", required=True,
                  choices=(Choice("fuel_delivery", "Livraison de combustible", "Fuel delivery"),
                           Choice("meter_reading", "Relevé de compteur", "Meter reading"))),
        FieldSpec(name="carrier", fr="Énergie", en="Energy carrier", input="select",
                  required=True,
                  choices=tuple(Choice(c, *_CARRIER_LABELS[c]) for c in _CARRIERS),
                  help_fr="fioul en L ; propane, granulés et plaquettes en kg ; électricité "
                          "et gaz en kWh",
                  help_en="fuel oil in L; propane, pellets and chips in kg; electricity and "
                          "gas in kWh"),
        FieldSpec(name="unit", fr="Unité", en="Unit", input="text", max_length=20,
                  help_fr="déduite de l'énergie si vide", help_en="from the carrier if empty"),
        FieldSpec(name="quantity", fr="Quantité livrée", en="Quantity delivered",
                  input="number", required=True, step=0.01, min=0, max=1e9, when=_DELIVERY),
        _moment("delivered_at", "Livré le", "Delivered", when=_DELIVERY),
        FieldSpec(name="delivery_note", fr="N° du bon de livraison", en="Delivery note no.",
                  input="text", required=True, max_length=100, when=_DELIVERY),
        FieldSpec(name="meter", fr="Compteur", en="Meter", input="text", required=True,
                  max_length=100, when=_READING),
        _moment("read_at", "Relevé le", "Read", when=_READING),
        FieldSpec(name="index_value", fr="Index", en="Index", input="number", required=True,
                  step=0.01, min=0, max=1e12, when=_READING),
        _NOTES,
    ))

BASELINES = RecordKind(
    name="baselines", slug="baselines", table=Baseline, input=BaselineIn, output=BaselineOut,
    writer=TokenRole.EVALUATOR, equipment_kinds=frozenset(), fr="Scénarios de référence",
    en="Baselines", order_by="name",
    fields=(
        FieldSpec(name="name", fr="Identifiant", en="Identifier", input="text", required=True,
                  max_length=80),
        FieldSpec(name="equipment_kind", fr="Type d'équipement", en="Equipment kind",
                  input="select", required=True,
                  choices=(Choice("dryer", "Séchoir", "Dryer"),
                           Choice("freezer", "Surgélateur", "Freezer"),
                           Choice("packaging", "Ligne de conditionnement", "Packaging line"))),
        FieldSpec(name="output", fr="Production de référence", en="Output", input="select",
                  required=True,
                  choices=(Choice("t_water_evaporated", "t d'eau évaporée",
                                  "t of water evaporated"),
                           Choice("t_dry_matter", "t de matière sèche", "t of dry matter"),
                           Choice("kg_frozen", "kg surgelés", "kg frozen"),
                           Choice("units_packed", "unités conditionnées", "units packed"))),
        FieldSpec(name="activity_per_output", fr="Activité par unité produite",
                  en="Activity per output", input="number", required=True, step=0.001,
                  min=0.001, max=1e9),
        FieldSpec(name="activity_unit", fr="Unité de l'activité", en="Activity unit",
                  input="text", required=True, max_length=40),
        FieldSpec(name="factor_id", fr="Facteur d'émission", en="Emission factor",
                  input="select", required=True, ref="factors"),
        FieldSpec(name="description", fr="Description", en="Description", input="textarea",
                  required=True, max_length=5000),
        FieldSpec(name="source", fr="Source", en="Source", input="textarea", required=True,
                  max_length=5000),
    ))

ELECTRICITY_CONTRACTS = RecordKind(
    name="electricity_contracts", slug="electricity-contracts", table=ElectricityContract,
    input=ElectricityContractIn, output=ElectricityContractOut, writer=TokenRole.EVALUATOR,
    equipment_kinds=frozenset(), per_site=True, fr="Contrats d'électricité",
    en="Electricity contracts", order_by="valid_from",
    fields=(
        FieldSpec(name="supplier", fr="Fournisseur", en="Supplier", input="text",
                  required=True, max_length=200),
        FieldSpec(name="product", fr="Offre", en="Product", input="text", required=True,
                  max_length=200),
        FieldSpec(name="factor_kg_per_kwh", fr="Facteur d'émission", en="Emission factor",
                  input="number", required=True, unit="kg CO₂e/kWh", step=0.0001, min=0,
                  max=2, help_fr="celui que le fournisseur déclare",
                  help_en="the supplier's disclosed factor"),
        FieldSpec(name="factor_source", fr="Source du facteur", en="Source of the factor",
                  input="textarea", required=True, max_length=2000),
        FieldSpec(name="guarantees_of_origin", fr="Garanties d'origine",
                  en="Guarantees of origin", input="checkbox"),
        FieldSpec(name="certificate_ref", fr="Référence du certificat",
                  en="Certificate reference", input="text", max_length=200,
                  help_fr="obligatoire avec des garanties d'origine",
                  help_en="required with guarantees of origin"),
        _moment("valid_from", "Début", "Start"),
        FieldSpec(name="valid_to", fr="Fin (exclue)", en="End (excluded)",
                  input="datetime-local", help_fr="vide : sans fin",
                  help_en="empty: open-ended"),
        _NOTES,
    ))

KINDS: dict[str, RecordKind] = {kind.name: kind for kind in (
    CAMPAIGNS, BATCHES, MATERIAL_LOTS, REFRIGERANT_TOP_UPS, MANUAL_ACTIVITIES, BASELINES,
    ELECTRICITY_CONTRACTS)}
BY_SLUG: dict[str, RecordKind] = {kind.slug: kind for kind in KINDS.values()}


def kinds_for(equipment_kind: EquipmentKind | str) -> list[RecordKind]:
    """The record kinds an equipment of that kind has (baselines belong to no equipment)."""
    wanted = EquipmentKind(equipment_kind)
    return [kind for kind in KINDS.values() if wanted in kind.equipment_kinds]
