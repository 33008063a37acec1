"""The money side: orders, the ledger and wallets, the settlement service, the reaper.

What it offers the OCPP side (the settlement sink, the order-id policy) is typed in
:mod:`csms.ports`; it never imports :mod:`csms.protocol` or :mod:`csms.api`.
"""
