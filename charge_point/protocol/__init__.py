"""OCPP adapters: thin 1.6 and 2.0.1 translations of the station's events and commands.

``commands`` holds what the two versions share (the effect of each CSMS command, grouped by
functional block); ``v16`` and ``v201`` only map message fields.
"""
