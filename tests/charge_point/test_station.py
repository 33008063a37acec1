"""The station's protocol-independent logic on a manual clock: no sockets, no sleeps."""

from __future__ import annotations

from collections.abc import Callable

from charge_point.clock import ManualClock
from charge_point.events import Kind
from charge_point.evse import Status
from charge_point.station import Station
from qr_extension.keys import generate_key
from qr_extension.refusal import Reason, Refusal
from qr_extension.settlement import check_settlement, verify_settlement
from qr_extension.start import read_start_token
from qr_extension.tariff import compute_cost
from tests.charge_point.conftest import TokenFactory

MakeStation = Callable[..., Station]


def run(station: Station, clock: ManualClock, seconds: float, step: float = 5.0) -> None:
    """Lets ``seconds`` of simulated time pass, ticking like the runner does."""
    end = clock.now() + seconds
    while clock.now() < end:
        clock.advance(min(step, end - clock.now()))
        station.tick()


def queued(station: Station) -> list[tuple[str, str | None, dict]]:
    return [(m.kind, m.txn, m.payload) for m in station.store.queue_items()]


def settle(station: Station):
    rows = [p for k, _, p in queued(station) if k == Kind.SETTLEMENT]
    assert rows, "no settlement queued"
    result = verify_settlement(rows[-1]["token"], key=station.key.public, audience="qrcharge")
    assert not isinstance(result, Refusal), result
    return result


def test_qr_start_charges_and_queues_started_offline(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1, capacity_wh=50_000, soc=0.5)
    assert station.connectors[1].status is Status.PREPARING
    result = station.scan(token("ORDER1", clock.now()))
    assert not isinstance(result, Refusal)
    assert station.connectors[1].status is Status.CHARGING
    assert station.store.is_used("ORDER1")
    kind, _txn, payload = queued(station)[0]
    assert kind == Kind.STARTED and payload["offline"] is True and payload["seq_no"] == 0
    assert payload["id_tag"] == "ORDER1"
    run(station, clock, 60)
    assert station.meters[1].power_w > 0
    assert station.sessions[1].energy_wh > 0


def test_energy_limit_suspends_then_unplug_ends_with_a_valid_settlement(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1, capacity_wh=50_000, soc=0.2)
    tok = token("ORDER2", clock.now(), wh=3000, amount=50_000)
    station.scan(tok)
    run(station, clock, 3600)
    session = station.sessions[1]
    assert session.limit is not None and session.limit.value == "EnergyLimitReached"
    assert session.energy_wh == 3000  # a coarse step never overshoots the limit
    assert station.connectors[1].status is Status.SUSPENDED_EVSE  # suspended, not ended (7.2)
    station.unplug(1)
    assert station.connectors[1].status is Status.AVAILABLE
    s = settle(station)
    auth = read_start_token(tok)
    assert not isinstance(auth, Refusal)
    assert check_settlement(s, auth, leeway_s=300) is None  # what the CSMS checks (7.7)
    assert s.energy_wh == 3000 and s.reason == "EnergyLimitReached"
    assert sum(b.idle_s for b in s.usage) > 0  # idle time after the limit is priced (7.2)
    assert s.amount == compute_cost(auth.tariff, s.usage, limit_amount=auth.limits.amount).total
    assert station.display.qr_kind == "settlement" and station.display.qr_text == s_token(station)
    assert station.display.settlement_png_path.exists()


def s_token(station: Station) -> str:
    return [p for k, _, p in queued(station) if k == Kind.SETTLEMENT][-1]["token"]


def test_cost_limit_stops_energy_and_settlement_never_exceeds_amount(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1, capacity_wh=80_000, soc=0.1)
    station.scan(token("ORDER3", clock.now(), amount=500))  # 5.00 CNY: 1.00 fixed + energy
    run(station, clock, 1800)
    session = station.sessions[1]
    assert session.limit is not None and session.limit.value == "CostLimitReached"
    energy_at_limit = session.energy_wh
    run(station, clock, 600)
    assert station.sessions[1].energy_wh == energy_at_limit  # energy stopped (7.1)
    station.press_stop(1)
    assert station.connectors[1].status is Status.FINISHING
    s = settle(station)
    assert s.amount == 500 and s.reason == "CostLimitReached"


def test_time_limit_and_full_ev(make_station: MakeStation, token: TokenFactory) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1, capacity_wh=10_000, soc=0.95)
    station.scan(token("ORDER4", clock.now(), s=1200, amount=50_000))
    run(station, clock, 900)
    assert station.connectors[1].status is Status.SUSPENDED_EV  # the EV is full
    assert station.meters[1].ev is not None and station.meters[1].ev.full
    run(station, clock, 600)
    assert station.connectors[1].status is Status.SUSPENDED_EVSE
    assert station.sessions[1].limit is not None
    assert station.sessions[1].limit.value == "TimeLimitReached"


def test_transaction_messages_are_ordered_with_gapless_seq_no(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock, meter_interval_s=60)
    station.plug(1)
    station.scan(token("ORDER5", clock.now(), wh=2000, amount=50_000))
    run(station, clock, 900)
    station.unplug(1)
    rows = queued(station)
    kinds = [k for k, _, _ in rows]
    assert kinds[0] == Kind.STARTED and kinds[-2:] == [Kind.ENDED, Kind.SETTLEMENT]
    assert set(kinds[1:-2]) == {Kind.UPDATED}
    seqs = [p["seq_no"] for k, _, p in rows if k != Kind.SETTLEMENT]
    assert seqs == list(range(len(seqs)))
    assert len({txn for _, txn, _ in rows}) == 1


def test_settlement_leaves_the_screen_after_timeout_or_next_session(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock, settlement_display_s=120)
    station.plug(1)
    station.scan(token("ORDER6", clock.now()))
    run(station, clock, 60)
    station.unplug(1)
    assert station.display.qr_kind == "settlement"
    run(station, clock, 130)
    assert station.display.qr_kind == "identification"
    assert not station.display.settlement_png_path.exists()
    station.plug(2)
    station.scan(token("ORDER7", clock.now(), evse=2))
    run(station, clock, 60)
    station.press_stop(2)
    assert station.display.qr_kind == "settlement"
    station.plug(1)
    station.scan(token("ORDER8", clock.now()))
    assert station.display.qr_kind == "identification"


def test_identification_qr_changes_with_the_time_step(make_station: MakeStation) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.tick()
    first = station.display.qr_text
    assert first is not None and "/c/CP-1?evse=1" in first and "t=" in first
    run(station, clock, 30)
    assert station.display.qr_text != first


def test_token_without_evse_needs_exactly_one_waiting_evse(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    refused = station.scan(token("ORDER9", clock.now(), evse=None))
    assert isinstance(refused, Refusal) and refused.reason is Reason.NO_EVSE_WAITING
    station.plug(1)
    station.plug(2)
    refused = station.scan(token("ORDER9", clock.now(), evse=None))
    assert isinstance(refused, Refusal) and refused.reason is Reason.NO_EVSE_WAITING
    station.unplug(1)
    ok = station.scan(token("ORDER9", clock.now(), evse=None))
    assert not isinstance(ok, Refusal) and ok.evse_id == 2


def test_named_evse_without_ev_is_busy(make_station: MakeStation, token: TokenFactory) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    refused = station.scan(token("ORDER10", clock.now(), evse=2))
    assert isinstance(refused, Refusal) and refused.reason is Reason.EVSE_BUSY
    assert station.display.reasons[-1].reason == "evse_busy"


def test_time_floor_never_goes_back(make_station: MakeStation, token: TokenFactory) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1)
    iat = clock.now() + 100  # a token from a CSMS whose clock is ahead (within leeway)
    station.scan(token("ORDER11", iat))
    assert station.floor == iat
    clock.set(clock.now() - 10_000)  # the RTC jumps back
    assert station.now() >= iat


def test_unsynced_clock_is_refused_unless_policy_allows(
    make_station: MakeStation, token: TokenFactory, tmp_path
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock, synced=False)
    station.plug(1)
    refused = station.scan(token("ORDER12", clock.now()))
    assert isinstance(refused, Refusal) and refused.reason is Reason.CLOCK_UNSYNCED
    station.store.close()
    lenient = make_station(clock=clock, synced=False, accept_unsynced_clock=True)
    lenient.plug(1)
    assert not isinstance(lenient.scan(token("ORDER12", clock.now())), Refusal)


def test_used_order_ids_are_pruned_only_below_the_floor(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1)
    station.scan(token("ORDER13", clock.now()))
    station.set_time(clock.now() + 900)  # exp, but within leeway: kept
    assert station.store.is_used("ORDER13")
    station.set_time(clock.now() + 900 + 301)
    assert not station.store.is_used("ORDER13")


def test_restore_ends_an_interrupted_session_with_power_loss(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock, meter_interval_s=60)
    station.plug(1)
    station.scan(token("ORDER14", clock.now(), amount=50_000))
    run(station, clock, 300)
    energy = station.sessions[1].energy_wh
    before = len(queued(station))
    station.store.close()  # power cut: nothing else is written
    clock.advance(600)
    again = make_station(clock=clock)
    again.restore()
    assert not again.sessions
    rows = queued(again)
    assert len(rows) == before + 2 and rows[-2][0] == Kind.ENDED
    assert rows[-2][2]["reason"] == "PowerLoss"
    s = settle(again)
    assert s.energy_wh == energy and s.reason == "PowerLoss"
    assert again.meters[1].register_wh == rows[-2][2]["meter_wh"]


def test_trusted_keys_rotation_and_rejection(make_station: MakeStation, csms_key) -> None:
    from qr_extension.keys import KeyRing
    from qr_extension.trust import sign_trusted_keys

    station = make_station()
    new = generate_key()
    ring = KeyRing((csms_key.public, new.public))
    assert station.install_trusted_keys(sign_trusted_keys(ring, csms_key, issued_at=1)) is None
    assert {k.kid for k in station.trusted} == {csms_key.kid, new.kid}
    stranger = generate_key()
    forged = sign_trusted_keys(KeyRing((stranger.public,)), stranger, issued_at=2)
    refusal = station.install_trusted_keys(forged)
    assert refusal is not None and refusal.reason is Reason.UNTRUSTED_KEYS
    assert {k.kid for k in station.trusted} == {csms_key.kid, new.kid}  # kept


def test_first_keys_only_with_the_policy(make_station: MakeStation, csms_key, tmp_path) -> None:
    from qr_extension.keys import KeyRing
    from qr_extension.trust import sign_trusted_keys

    first = sign_trusted_keys(KeyRing((csms_key.public,)), csms_key, issued_at=1)
    station = make_station(state_dir=tmp_path / "a")
    station.store.put("trusted_jwks", None)
    assert station.install_trusted_keys(first) is not None
    lenient = make_station(state_dir=tmp_path / "b", trust_first_keys=True)
    lenient.store.put("trusted_jwks", None)
    assert lenient.install_trusted_keys(first) is None
    assert [k.kid for k in lenient.trusted] == [csms_key.kid]


def test_remote_start_before_plug_starts_at_plug(make_station: MakeStation) -> None:
    station = make_station()
    assert station.remote_start("ORDERR", 1, 7)
    assert station.connectors[1].status is Status.PREPARING and not station.sessions
    station.plug(1)
    assert station.connectors[1].status is Status.CHARGING
    started = queued(station)[0][2]
    assert started["id_tag"] == "ORDERR" and started["remote_start_id"] == 7
    assert not station.remote_start("OTHER", 1, 8)  # busy
    assert station.remote_stop(station.sessions[1].local_id)
    assert station.connectors[1].status is Status.FINISHING
    assert not [k for k, _, _ in queued(station) if k == Kind.SETTLEMENT]  # no QR order


def test_authorisation_without_ev_lapses_after_connection_timeout(
    make_station: MakeStation,
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    assert station.remote_start("ORDERT", 1, None)
    run(station, clock, 59)
    assert station.connectors[1].status is Status.PREPARING
    run(station, clock, 2)
    assert station.connectors[1].status is Status.AVAILABLE and not station.pending


def test_a_fault_ends_the_session_and_faults_the_evse(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    station.plug(1)
    station.scan(token("ORDERF", clock.now()))
    run(station, clock, 60)
    station.fault(1)
    assert station.connectors[1].status is Status.FAULTED and not station.sessions
    assert settle(station).reason == "Other"
    station.clear_fault(1)
    assert station.connectors[1].status is Status.PREPARING  # the EV is still plugged


def test_identification_secret_from_the_csms_is_used_and_never_read_back(
    make_station: MakeStation,
) -> None:
    from charge_point.errors import ConfigurationError
    from qr_extension.identify import parse_identification_url, verify_presence_code

    clock = ManualClock()
    station = make_station(clock=clock)
    secret = "ab" * 16
    station.config.set("IdentificationSecret", secret)
    station.tick()
    ident = parse_identification_url(station.display.qr_text or "")
    assert ident.code is not None
    assert verify_presence_code(
        bytes.fromhex(secret), ident.code, int(clock.now()), step_s=30, digits=6
    )
    assert dict((k.name, v) for k, v in station.config.items())["IdentificationSecret"] == ""
    try:
        station.config.set("IdentificationSecret", "abcd")
    except ConfigurationError:
        pass
    else:
        raise AssertionError("a short secret was accepted")


def test_a_restart_with_the_same_key_file_keeps_a_rotation(
    make_station: MakeStation, csms_key
) -> None:
    from qr_extension.keys import KeyRing
    from qr_extension.trust import sign_trusted_keys

    station = make_station()  # installed the file's JWKS
    original = KeyRing((csms_key.public,)).to_jwks()
    assert not station.install_trusted_jwks(original)  # same file again: nothing changes
    new = generate_key()
    rotated = KeyRing((new.public,))
    assert station.install_trusted_keys(sign_trusted_keys(rotated, csms_key, issued_at=5)) is None
    assert not station.install_trusted_jwks(original)  # restart with the unchanged file
    assert [k.kid for k in station.trusted] == [new.kid]
    other = generate_key()
    assert station.install_trusted_jwks(KeyRing((other.public,)).to_jwks())  # a new file wins
    assert [k.kid for k in station.trusted] == [other.kid]


def test_a_power_cut_loses_at_most_one_checkpoint_of_metering(
    make_station: MakeStation, token: TokenFactory
) -> None:
    from charge_point.station import CHECKPOINT_S

    clock = ManualClock()
    station = make_station(clock=clock, meter_interval_s=600)  # no meter sample meanwhile
    station.plug(1)
    station.scan(token("ORDERCUT", clock.now(), amount=50_000))
    run(station, clock, 95, step=1)
    energy = station.sessions[1].energy_wh
    power_w = station.meters[1].power_w
    station.store.close()
    again = make_station(clock=clock)
    again.restore()
    restored = settle(again).energy_wh
    assert energy - power_w * CHECKPOINT_S / 3600 <= restored <= energy
    assert restored > 0


def test_change_availability_is_scheduled_during_a_session(
    make_station: MakeStation, token: TokenFactory
) -> None:
    clock = ManualClock()
    station = make_station(clock=clock)
    assert station.change_availability(2, operative=False) == "Accepted"
    assert station.connectors[2].status is Status.UNAVAILABLE
    assert station.scan(token("ORDERU", clock.now(), evse=2)).reason is Reason.EVSE_BUSY  # type: ignore[union-attr]
    assert station.change_availability(2, operative=True) == "Accepted"
    station.plug(1)
    station.scan(token("ORDERV", clock.now()))
    assert station.change_availability(1, operative=False) == "Scheduled"
    assert station.connectors[1].status is Status.CHARGING
    assert station.change_availability(9, operative=False) == "Rejected"
