"""API shapes of billing models and assignments, and their conversion to :class:`Tariff`.

Prices are integers in 1/10,000 of the currency unit (``PRICE_SCALE``); ``cap`` is minor
units. The request models check ranges; :func:`to_tariff` adds the rules of the core (time
of use periods must not overlap, an idle grace needs an idle price).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from csms.billing.errors import BillingModelInvalid
from csms.bounds import RowId
from csms.store.models_money import BillingModel
from qr_extension import PRICE_SCALE, Tariff, TariffError, TouPeriod

PRICE_MAX = 10**9  # 100,000 currency units per kWh or hour: anything above is a typo
Price = Annotated[StrictInt, Field(ge=0, le=PRICE_MAX)]
TARIFF_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,36}$"


class TouIn(BaseModel):
    """A time-of-use period of local time ``[start_minute, end_minute)`` (may cross midnight)."""

    start_minute: int = Field(ge=0, le=1439)
    end_minute: int = Field(ge=0, le=1440)
    energy_price: Price
    time_price: Price


class TariffFields(BaseModel):
    """The priced part of a billing model (what a start token's ``tar`` signs)."""

    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["CNY"])
    fixed_fee: Price = 0
    energy_price: Price = 0
    time_price: Price = 0
    idle_price: Price | None = None
    idle_grace_min: int = Field(default=0, ge=0, le=1440)
    tou: list[TouIn] = Field(default_factory=list, max_length=8)
    tz_offset_min: int = Field(default=0, ge=-840, le=840)
    cap: StrictInt | None = Field(
        default=None, ge=1, le=10**9, description="minor units; none: no cap"
    )


class BillingModelCreate(TariffFields):
    id: str = Field(pattern=TARIFF_ID_PATTERN, description="the tariff id signed as tid")
    name: str = Field(default="", max_length=100)


class BillingModelUpdate(TariffFields):
    """A full replacement of the priced fields (orders already issued keep their snapshot)."""

    name: str = Field(default="", max_length=100)


class TariffPublic(TariffFields):
    id: str
    price_scale: int = PRICE_SCALE


class BillingModelPublic(TariffPublic):
    name: str
    version: int
    created_at: datetime
    updated_at: datetime


class AssignmentCreate(BaseModel):
    """Exactly one target: ``user_id`` (+ optional ``charger_id``), ``charger_id``, or
    ``site`` (a charger ``location``)."""

    user_id: RowId | None = None
    charger_id: str | None = Field(default=None, max_length=48)
    site: str | None = Field(default=None, min_length=1, max_length=200)


class AssignmentPublic(BaseModel):
    id: int
    billing_model_id: str
    scope: str
    user_id: int | None
    charger_id: str | None
    site: str | None
    created_at: datetime


def to_tariff(tariff_id: str, fields: TariffFields) -> Tariff:
    """The core tariff of these fields; BillingModelInvalid if the core refuses them."""
    try:
        return Tariff(
            id=tariff_id,
            currency=fields.currency,
            fixed_fee=fields.fixed_fee,
            energy_price=fields.energy_price,
            time_price=fields.time_price,
            idle_price=fields.idle_price,
            idle_grace_min=fields.idle_grace_min,
            tou=tuple(
                TouPeriod(p.start_minute, p.end_minute, p.energy_price, p.time_price)
                for p in fields.tou
            ),
            tz_offset_min=fields.tz_offset_min,
            cap=fields.cap,
        )
    except TariffError as exc:
        raise BillingModelInvalid(str(exc)) from exc


def tariff_of(model: BillingModel) -> Tariff:
    """The core tariff a stored billing model stands for."""
    return Tariff(
        id=model.id,
        currency=model.currency,
        fixed_fee=model.fixed_fee,
        energy_price=model.energy_price,
        time_price=model.time_price,
        idle_price=model.idle_price,
        idle_grace_min=model.idle_grace_min,
        tou=tuple(TouPeriod(*p) for p in json.loads(model.tou)),
        tz_offset_min=model.tz_offset_min,
        cap=model.cap,
    )


def tariff_public(tariff: Tariff) -> TariffPublic:
    return TariffPublic(
        id=tariff.id,
        currency=tariff.currency,
        fixed_fee=tariff.fixed_fee,
        energy_price=tariff.energy_price,
        time_price=tariff.time_price,
        idle_price=tariff.idle_price,
        idle_grace_min=tariff.idle_grace_min,
        tou=[
            TouIn(
                start_minute=p.start_minute,
                end_minute=p.end_minute,
                energy_price=p.energy_price,
                time_price=p.time_price,
            )
            for p in tariff.tou
        ],
        tz_offset_min=tariff.tz_offset_min,
        cap=tariff.cap,
    )


def model_public(model: BillingModel) -> BillingModelPublic:
    base = tariff_public(tariff_of(model)).model_dump()
    return BillingModelPublic(
        **base,
        name=model.name,
        version=model.version,
        created_at=model.created_at,
        updated_at=model.updated_at,
    )
