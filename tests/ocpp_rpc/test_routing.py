"""Handler tables per class, from our ``@on``: no module-level registry."""

from __future__ import annotations

from typing import Any

from ocpp_rpc import on, routes


class Base:
    @on("Heartbeat")
    def beat(self) -> str:
        return "base"

    @on("Authorize", skip_schema_validation=True)
    def authorize(self, id_tag: str, call_unique_id: str) -> str:
        return call_unique_id


class Child(Base):
    @on("Heartbeat")
    def beat(self) -> str:  # overrides its base's
        return "child"


class Unrelated:
    def beat(self) -> None:  # same name, no decorator: no route
        pass


def test_a_class_table_names_its_own_and_inherited_handlers() -> None:
    table = routes(Child)
    assert set(table) == {"Heartbeat", "Authorize"}
    assert table["Heartbeat"].function(Child()) == "child"
    assert routes(Base)["Heartbeat"].function(Base()) == "base"
    authorize = table["Authorize"]
    assert authorize.wants_unique_id and not authorize.validated
    assert table["Heartbeat"].validated and not table["Heartbeat"].wants_unique_id


def test_a_name_decorated_elsewhere_is_no_route_here() -> None:
    assert routes(Unrelated) == {}


def test_a_handler_keeps_its_signature_and_says_its_action() -> None:
    handler: Any = Base.authorize
    assert handler._on_action == "Authorize"
    assert Base().authorize("T", call_unique_id="u") == "u"
