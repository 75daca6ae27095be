"""drand: genuine quicknet rounds verify, a fake beacon on 127.0.0.1 speaking the real
protocol is fetched and checked, and every way a beacon can fail is a clear DrandError."""

from __future__ import annotations

import calendar
import hashlib
import socket

import pytest

from app.draws.drand import (
    DST,
    QUICKNET_CHAIN,
    SCHEME,
    ChainInfo,
    DrandBadResponse,
    DrandBadSignature,
    DrandClient,
    DrandNotYet,
    DrandRound,
    DrandUnavailable,
    DrandWrongChain,
    chain_hash,
    check_chain,
    round_after,
    round_at,
    round_message,
    time_of,
    verify_round,
)
from app.settings import Settings, SettingsError, load_settings
from tests.fakes.drand_beacon import FakeDrand

# League of Entropy quicknet, as https://api.drand.sh/52db…e971/info publishes it.
QUICKNET_KEY = (
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a577"
    "6a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e"
    "76eae8991ef5ece45a"
)
QUICKNET = ChainInfo(
    hash=QUICKNET_CHAIN,
    public_key=QUICKNET_KEY,
    period=3,
    genesis_time=1692803367,
    group_hash="f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
    beacon_id="quicknet",
    scheme=SCHEME,
)
# Published quicknet rounds (round, signature, randomness), as several independent drand
# clients and their tests quote them; that they verify against the key above proves them.
GENUINE_ROUNDS = [
    (
        1000,
        "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b"
        "6b63ed5e39",
        "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
    ),
    (
        657413,
        "b713718a38ae728dfd477991af2822e08d2f305e47718cef9f7848ce4050e7be41076862b98fad56e91a6b"
        "85b89cd97b",
        "fc1873a13f3545aeade8401532ef5519920652eee6b0d2b19ca12643b87b3587",
    ),
]


def test_the_settings_default_to_quicknet_on_the_league_of_entropy_beacon() -> None:
    settings = load_settings({})
    assert settings.drand_url == "https://api.drand.sh"
    assert settings.drand_chain == QUICKNET_CHAIN == chain_hash(QUICKNET)
    client = DrandClient.from_settings(
        load_settings(
            {"LEADKIT_DRAND_URL": "http://127.0.0.1:9/relay/", "LEADKIT_DRAND_CHAIN": "ab" * 32}
        )
    )
    assert (client.base_url, client.chain) == ("http://127.0.0.1:9/relay", "ab" * 32)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEADKIT_DRAND_URL", "ftp://api.drand.sh"),
        ("LEADKIT_DRAND_URL", "https://"),
        ("LEADKIT_DRAND_URL", "https://api.drand.sh?x=1"),
        ("LEADKIT_DRAND_URL", "https://api.drand.sh#x"),
        ("LEADKIT_DRAND_CHAIN", QUICKNET_CHAIN[:-1]),
        ("LEADKIT_DRAND_CHAIN", QUICKNET_CHAIN + "0"),
        ("LEADKIT_DRAND_CHAIN", QUICKNET_CHAIN.upper()),
        ("LEADKIT_DRAND_CHAIN", "g" + QUICKNET_CHAIN[1:]),
    ],
)
def test_a_bad_drand_setting_is_refused_by_name(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})


def test_good_drand_settings_load() -> None:
    settings = load_settings(
        {"LEADKIT_DRAND_URL": "http://127.0.0.1:8080/drand", "LEADKIT_DRAND_CHAIN": "0" * 64}
    )
    assert settings == Settings(drand_url="http://127.0.0.1:8080/drand", drand_chain="0" * 64)


def test_a_client_refuses_a_chain_hash_that_is_not_one() -> None:
    for chain in ("", QUICKNET_CHAIN[:-1], QUICKNET_CHAIN.upper(), QUICKNET_CHAIN + "\n"):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            DrandClient("https://api.drand.sh", chain)


# --- the pure parts: chain hash, round arithmetic, signatures ------------------------------


def test_the_chain_hash_follows_drand_including_the_beacon_id() -> None:
    assert chain_hash(QUICKNET) == QUICKNET_CHAIN
    # drand's first chain ("default", or no id) leaves the id out of its hash.
    base = hashlib.sha256(
        (3).to_bytes(4, "big")
        + (1692803367).to_bytes(8, "big")
        + bytes.fromhex(QUICKNET.public_key)
        + bytes.fromhex(QUICKNET.group_hash)
    ).hexdigest()
    for beacon_id in ("", "default"):
        assert chain_hash(_with(QUICKNET, beacon_id=beacon_id)) == base
    for field, value in (("period", 30), ("genesis_time", 1692803368), ("beacon_id", "quick")):
        assert chain_hash(_with(QUICKNET, **{field: value})) != QUICKNET_CHAIN, field


def test_a_malformed_chain_is_the_wrong_chain() -> None:
    for changes in (
        {"public_key": "zz"},
        {"group_hash": "0"},
        {"period": -1},
        {"period": 2**32},
        {"genesis_time": 2**63},
    ):
        with pytest.raises(ValueError):
            chain_hash(_with(QUICKNET, **changes))
        with pytest.raises(DrandWrongChain, match="malformed"):
            check_chain(_with(QUICKNET, **changes), QUICKNET_CHAIN)


def test_check_chain_wants_the_hash_the_scheme_and_a_period() -> None:
    check_chain(QUICKNET, QUICKNET_CHAIN)
    with pytest.raises(DrandWrongChain, match=f"not the configured {'0' * 64}"):
        check_chain(QUICKNET, "0" * 64)
    # A chain that names the configured hash but whose parameters hash to something else.
    with pytest.raises(DrandWrongChain, match="hash to"):
        check_chain(_with(QUICKNET, genesis_time=1), QUICKNET_CHAIN)
    lying = _with(QUICKNET, hash="0" * 64)
    with pytest.raises(DrandWrongChain, match="serves chain 0000"):
        check_chain(lying, QUICKNET_CHAIN)
    with pytest.raises(DrandWrongChain, match="uses scheme pedersen-bls-chained; only "):
        check_chain(_with(QUICKNET, scheme="pedersen-bls-chained"), QUICKNET_CHAIN)
    zero = _with(QUICKNET, period=0)
    zero = _with(zero, hash=chain_hash(zero))
    with pytest.raises(DrandWrongChain, match="period of 0 s"):
        check_chain(zero, chain_hash(zero))
    one = _with(QUICKNET, period=1)
    check_chain(_with(one, hash=chain_hash(one)), chain_hash(one))


@pytest.mark.parametrize(("round_number", "signature", "randomness"), GENUINE_ROUNDS)
def test_genuine_quicknet_rounds_verify(round_number: int, signature: str, randomness: str) -> None:
    assert verify_round(QUICKNET_KEY, round_number, signature).hex() == randomness
    assert hashlib.sha256(bytes.fromhex(signature)).hexdigest() == randomness
    # The same signature is no signature of the neighbouring rounds.
    for other in (round_number - 1, round_number + 1):
        with pytest.raises(DrandBadSignature, match=f"round {other}: the signature does not"):
            verify_round(QUICKNET_KEY, other, signature)


def test_the_signed_message_and_the_dst_are_quicknets() -> None:
    assert round_message(1000) == hashlib.sha256(b"\x00\x00\x00\x00\x00\x00\x03\xe8").digest()
    assert DST == b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"


def test_signatures_that_are_not_signatures_are_refused() -> None:
    _, signature, _ = GENUINE_ROUNDS[0]
    identity = "c0" + "00" * 47  # the compressed point at infinity
    for bad, reason in (
        ("zz" + signature[2:], "not a G1 signature"),
        (signature[:-2], "not a G1 signature"),
        (signature + "00", "not a G1 signature"),
        ("00" * 48, "not a G1 signature"),
        (identity, "the signature is the identity point"),
    ):
        with pytest.raises(DrandBadSignature, match=f"round 1000: {reason}"):
            verify_round(QUICKNET_KEY, 1000, bad)
    for round_number in (0, -1, 2**64):
        with pytest.raises(DrandBadSignature, match=f"round {round_number} is not a drand"):
            verify_round(QUICKNET_KEY, round_number, signature)
    # The largest round number drand can sign is checked, not refused.
    with pytest.raises(DrandBadSignature, match="does not verify"):
        verify_round(QUICKNET_KEY, 2**64 - 1, signature)
    with pytest.raises(DrandBadSignature, match="round 1: the signature does not verify"):
        verify_round(QUICKNET_KEY, 1, signature)


def test_a_public_key_that_is_not_one_is_the_wrong_chain() -> None:
    _, signature, _ = GENUINE_ROUNDS[0]
    for key in ("zz", QUICKNET_KEY[:-2], "00" * 96):
        with pytest.raises(DrandWrongChain, match="not a G2 point"):
            verify_round(key, 1000, signature)
    # The identity key with the identity signature satisfies the pairing equation.
    with pytest.raises(DrandBadSignature, match="identity point"):
        verify_round("c0" + "00" * 95, 1000, "c0" + "00" * 47)
    with pytest.raises(DrandBadSignature, match="identity point"):
        verify_round("c0" + "00" * 95, 1000, signature)


def test_round_arithmetic_matches_drands() -> None:
    genesis = QUICKNET.genesis_time
    assert round_at(QUICKNET, genesis - 1) == 0
    assert round_at(QUICKNET, genesis - 0.5) == 0
    assert round_at(QUICKNET, genesis) == 1
    assert round_at(QUICKNET, genesis + 2.999) == 1
    assert round_at(QUICKNET, genesis + 3) == 2
    assert time_of(QUICKNET, 1) == genesis
    assert time_of(QUICKNET, 1000) == genesis + 2997
    # Another drand client's documented figures for quicknet.
    april = calendar.timegm((2026, 4, 20, 0, 0, 0))
    assert round_at(QUICKNET, april) == 27946612
    assert round_at(QUICKNET, calendar.timegm((2026, 4, 20, 12, 30, 45))) == 27961627
    assert time_of(QUICKNET, 27946612) == april
    # The round announced for a close: the first one produced strictly after it.
    assert round_after(QUICKNET, april) == 27946613
    assert round_after(QUICKNET, april - 0.5) == 27946612
    assert round_after(QUICKNET, genesis - 100) == 1
    for when in (april - 1, april, april + 1.5, april + 2.9):
        assert time_of(QUICKNET, round_after(QUICKNET, when)) > when


# --- the client against a beacon on 127.0.0.1 ------------------------------------------


async def test_the_genuine_quicknet_round_is_fetched_and_verified() -> None:
    with FakeDrand.genuine() as beacon:
        client = DrandClient(beacon.url, QUICKNET_CHAIN)
        got = await client.fetch(1000)
    round_number, signature, randomness = GENUINE_ROUNDS[0]
    assert got == DrandRound(
        round=round_number, randomness=randomness, signature=signature, chain=QUICKNET
    )
    assert beacon.requests == [f"/{QUICKNET_CHAIN}/info", f"/{QUICKNET_CHAIN}/public/1000"]


async def test_rounds_from_a_beacon_speaking_the_protocol_verify() -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url + "/", beacon.chain)
        info = await client.info()
        latest = beacon.latest_round()
        first = await client.fetch(latest)
        second = await client.fetch(latest - 5)
        assert await client.round_after(time_of(info, latest)) == latest + 1
    assert info.hash == beacon.chain and info.beacon_id == "fakenet"
    assert info.public_key == beacon.info["public_key"] and info.scheme == SCHEME
    assert first.signature == beacon.sign(latest)
    assert first.randomness == hashlib.sha256(bytes.fromhex(first.signature)).hexdigest()
    assert second.round == latest - 5 and second.chain == info
    # The chain information is fetched once and kept: it cannot change under its hash.
    assert beacon.requests == [
        f"/{beacon.chain}/info",
        f"/{beacon.chain}/public/{latest}",
        f"/{beacon.chain}/public/{latest - 5}",
    ]


async def test_a_round_signed_for_another_round_is_refused() -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        await client.info()
        beacon.corrupt_next()
        round_number = beacon.latest_round() - 1
        with pytest.raises(DrandBadSignature, match=f"round {round_number}: the signature does"):
            await client.fetch(round_number)


async def test_randomness_that_is_not_the_signatures_hash_is_refused() -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        await client.info()
        round_number = beacon.latest_round()
        answer = beacon.beacon(round_number) | {"randomness": "00" * 32}
        beacon.answer_raw_next(200, _json(answer))
        with pytest.raises(DrandBadSignature, match="not SHA-256 of the signature"):
            await client.fetch(round_number)


async def test_a_beacon_of_another_chain_is_the_wrong_chain() -> None:
    with FakeDrand(answer_any_chain=True) as beacon:
        client = DrandClient(beacon.url, QUICKNET_CHAIN)
        with pytest.raises(DrandWrongChain, match=f"serves chain {beacon.chain}"):
            await client.fetch(1000)
    assert beacon.requests == [f"/{QUICKNET_CHAIN}/info"]


async def test_a_beacon_that_swaps_the_key_under_the_chain_hash_is_caught() -> None:
    with FakeDrand() as beacon, FakeDrand() as other:
        beacon.info["public_key"] = other.info["public_key"]  # hash field left as it was
        client = DrandClient(beacon.url, beacon.chain)
        with pytest.raises(DrandWrongChain, match="its parameters hash to"):
            await client.info()


async def test_a_chain_of_another_scheme_is_refused() -> None:
    with FakeDrand(scheme="pedersen-bls-unchained") as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        with pytest.raises(DrandWrongChain, match="uses scheme pedersen-bls-unchained"):
            await client.info()


async def test_a_round_not_yet_produced_is_not_asked_for() -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        info = await client.info()
        upcoming = beacon.latest_round() + 2
        with pytest.raises(DrandNotYet, match=f"round {upcoming} is produced at "):
            await client.fetch(upcoming)
        for nonsense in (0, -1):
            with pytest.raises(ValueError, match=f"from 1, not {nonsense}"):
                await client.fetch(nonsense)
        # On the second its round is due, it is asked for.
        due = DrandClient(beacon.url, beacon.chain, clock=lambda: time_of(info, 7))
        assert (await due.fetch(7)).round == 7
        early = DrandClient(beacon.url, beacon.chain, clock=lambda: time_of(info, 7) - 0.001)
        with pytest.raises(DrandNotYet):
            await early.fetch(7)
    assert beacon.requests == [
        f"/{beacon.chain}/info",
        f"/{beacon.chain}/info",
        f"/{beacon.chain}/public/7",
        f"/{beacon.chain}/info",
    ]


async def test_an_unreachable_beacon_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = DrandClient(f"http://127.0.0.1:{port}", QUICKNET_CHAIN)
    with pytest.raises(DrandUnavailable, match=f"127.0.0.1:{port}/{QUICKNET_CHAIN}/info did not"):
        await client.fetch(1000)


async def test_a_beacon_slower_than_the_timeout_is_unavailable() -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain, timeout=0.3)
        beacon.stall_next(1.5)
        with pytest.raises(DrandUnavailable, match=r"did not answer .*Timeout"):
            await client.info()
        assert (await client.info()).hash == beacon.chain  # the next answer is on time


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (500, b"oops", DrandUnavailable, "answered 500"),
        (404, b'{"error":"round not found"}', DrandUnavailable, "answered 404"),
        (201, b"{}", DrandUnavailable, "answered 201"),
        (200, b"<html>", DrandBadResponse, "sent JSON is malformed"),
        (200, b'{"round": 5}', DrandBadResponse, "missing required field"),
        (200, b'{"round": "5", "randomness": "", "signature": ""}', DrandBadResponse, "int"),
    ],
)
async def test_a_beacon_answering_nonsense_is_a_clear_error(
    status: int, body: bytes, error: type[Exception], message: str
) -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        await client.info()
        beacon.answer_raw_next(status, body)
        with pytest.raises(error, match=message):
            await client.fetch(beacon.latest_round())


async def test_an_answer_for_another_round_is_refused() -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        await client.info()
        round_number = beacon.latest_round()
        beacon.answer_raw_next(200, _json(beacon.beacon(round_number - 1)))
        with pytest.raises(DrandBadResponse, match=f"asked for round {round_number}, got round"):
            await client.fetch(round_number)


async def test_bad_chain_information_is_not_kept() -> None:
    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        beacon.answer_raw_next(200, _json(beacon.info | {"period": 4}))
        with pytest.raises(DrandWrongChain):
            await client.info()
        assert (await client.info()).period == 3


def _with(info: ChainInfo, **changes: object) -> ChainInfo:
    import msgspec

    return msgspec.structs.replace(info, **changes)


def _json(value: object) -> bytes:
    import json

    return json.dumps(value).encode()
