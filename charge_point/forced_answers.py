"""Answers forced through the control API, for tests and integrators: "answer the next
ReserveNow ``Occupied``", "answer every ChangeAvailability with a NotImplemented CALLERROR".

A forced answer replaces the handler: the charger does nothing but answer (a forced
``Rejected`` ReserveNow reserves nothing). It lasts for ``times`` requests of that action, or
until cleared; it is not kept across a restart (a test tool, not a setting).
"""

from __future__ import annotations

from dataclasses import dataclass

from ocpp import exceptions
from ocpp.messages import CallResult, validate_payload
from ocpp.v16.enums import Action as Action16
from ocpp.v201.enums import Action as Action201

ACTIONS = {"1.6": {a.value for a in Action16}, "2.0.1": {a.value for a in Action201}}

# the CALLERROR codes a forced answer may give, and the library's exception for each
ERRORS: dict[str, type[exceptions.OCPPError]] = {
    cls.code: cls
    for cls in (
        exceptions.NotImplementedError,
        exceptions.NotSupportedError,
        exceptions.InternalError,
        exceptions.ProtocolError,
        exceptions.SecurityError,
        exceptions.GenericError,
    )
}


@dataclass(slots=True)
class ForcedAnswer:
    """The ``status`` to answer with, or the CALLERROR ``error`` code; ``times`` left (None:
    until cleared)."""

    action: str
    status: str | None = None
    error: str | None = None
    times: int | None = None

    def exception(self) -> exceptions.OCPPError:
        assert self.error is not None
        return ERRORS[self.error](description="answer forced through the control API")


class ForcedAnswers:
    """The forced answers of one charger, by OCPP action."""

    def __init__(self) -> None:
        self._by_action: dict[str, ForcedAnswer] = {}

    def force(self, answer: ForcedAnswer) -> None:
        self._by_action[answer.action] = answer

    def clear(self, action: str | None = None) -> None:
        if action is None:
            self._by_action.clear()
        else:
            self._by_action.pop(action, None)

    def take(self, action: str) -> ForcedAnswer | None:
        """The forced answer for one request of ``action``, counting it down."""
        answer = self._by_action.get(action)
        if answer is None:
            return None
        if answer.times is not None:
            answer.times -= 1
            if answer.times <= 0:
                del self._by_action[action]
        return answer

    def listed(self) -> list[ForcedAnswer]:
        return list(self._by_action.values())


async def problem(answer: ForcedAnswer, version: str) -> str | None:
    """Why ``answer`` cannot be forced on a charger of OCPP ``version``, or None: the action
    must be one of the version's, and a status one that its answer's schema allows."""
    if answer.action not in ACTIONS.get(version, set()):
        return f"{answer.action!r} is not an OCPP {version} action"
    if (answer.status is None) == (answer.error is None):
        return "give either a status or an error"
    if answer.error is not None:
        return None if answer.error in ERRORS else f"error must be one of {sorted(ERRORS)}"
    result = CallResult("forced", {"status": answer.status})
    result.action = answer.action
    try:
        await validate_payload(result, version)
    except exceptions.OCPPError as exc:
        return f"{answer.action} cannot be answered {answer.status!r}: {exc.description}"
    return None
