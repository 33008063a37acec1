"""The reference charge point: OCPP 1.6J / 2.0.1, offline QR starts, signed settlements.

Start reading at :mod:`charge_point.station` (the logic) and :mod:`charge_point.evse` (the
status table); ``docs/charge-point.md`` maps every module. Errors: :mod:`charge_point.errors`.
"""
