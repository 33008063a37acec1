"""What several CSMS nodes share through Redis (``redis_url``; empty: one node, none of this).

* :mod:`csms.cluster.presence`: which node holds each charger's socket, a key with a TTL that
  the holding node refreshes, so a dead node's chargers are offline within ``presence_ttl_s``;
* :mod:`csms.cluster.node`: one node's Redis side: its channel (commands for the chargers it
  holds, "close" for a charger that connected elsewhere, answers to its own questions), the
  cluster-wide channel (broadcasts, cache invalidations), and the
  :class:`~csms.commands.CommandDispatcher` that sends a command wherever the socket is.

Everything durable stays in the database; Redis holds only what a node may lose and rebuild
(presence is refreshed, counts of wrong passwords start afresh).
"""
