"""``qrcharge demo``: the whole system in one process, for a person or a browser test.

It starts the CSMS (SQLite in a data dir), a fleet of simulated chargers (OCPP 1.6 and
2.0.1) with their control APIs, registers them, creates a demo driver with wallet money and a
personal billing model, and prints the URLs of the driver page and the operator page.

Modules: :mod:`demo.fleet` (the simulated chargers), :mod:`demo.provision` (what is set up
through the public APIs), :mod:`demo.router` (the operator page's bridge to the chargers'
control APIs), :mod:`demo.runner` (start, run, stop), :mod:`demo.cli` (the command line).
"""

from demo.errors import DemoError

__all__ = ["DemoError"]
