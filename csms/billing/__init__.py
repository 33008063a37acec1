"""Billing models (the patent's "user billing model"): operator CRUD, assignment, resolution.

The same charger can price two drivers differently: :func:`csms.billing.resolve.billing_model_for`
picks the model by precedence (driver at this charger, driver, charger, site, config default).
"""
