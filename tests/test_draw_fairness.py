"""leadkit-draw-v1 (app/draws/ entrants, fairness and proof; docs/draws.md): the canonical
list, the DRBG, the weighted selection, tiers and reserves, one win per phone, the proof bundle
and its verification, `leadkit draws verify` — and an independent re-implementation of the
documented algorithm that must agree with the server's functions."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections import Counter
from itertools import count
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from app.cli import main
from app.draws import entrants as entrant_list
from app.draws.drand import (
    QUICKNET_CHAIN,
    ChainInfo,
    DrandError,
    DrandRound,
    chain_hash,
    verify_round,
)
from app.draws.entrants import (
    DrawInputError,
    Entrant,
    Entry,
    FrozenList,
    canonical_bytes,
    freeze,
    list_problems,
)
from app.draws.fairness import (
    ALGORITHM,
    Drbg,
    TierResult,
    TierRule,
    commitment,
    draw,
    drbg_key,
    new_seed,
    rule_problems,
    select,
    uniform,
)
from app.draws.proof import Mismatch, Proof, decode_proof, encode_proof, prove, verify
from tests.fakes.drand_beacon import FakeDrand

SEED = bytes(range(32))
DOCS = Path(__file__).resolve().parent.parent / "docs" / "draws.md"


# --- an independent re-implementation of docs/draws.md (imports nothing from app/) --------


def reference_draw(bundle: dict[str, Any]) -> list[tuple[list[int], list[int]]]:
    """Each tier's (winners, reserves) for a proof bundle, as docs/draws.md defines them."""
    entrants = bundle["entrants"]
    lines = "".join(f"{e['id']}\t{e['phone']}\t{e['chances']}\t{e['group']}\n" for e in entrants)
    mixed = bytes.fromhex(bundle["drand"]["randomness"]) if bundle.get("drand") else b""
    message = b"leadkit-draw-v1\x00" + hashlib.sha256(lines.encode()).digest() + mixed
    key = hmac.new(bytes.fromhex(bundle["seed"]), message, hashlib.sha256).digest()
    blocks = (hmac.new(key, i.to_bytes(8, "big"), hashlib.sha256).digest() for i in count())
    numbers = (int.from_bytes(b[j : j + 8], "big") for b in blocks for j in (0, 8, 16, 24))

    def below(n: int) -> int:
        while (x := next(numbers)) >= 2**64 - 2**64 % n:
            pass
        return x % n

    pool, tiers = list(entrants), []
    for tier in bundle["tiers"]:
        if not bundle["one_win_per_phone"]:
            pool = list(entrants)
        picks = []
        for wanted in (tier["quantity"], tier["reserve_quantity"]):
            got: list[int] = []
            while len(got) < wanted and pool:
                r = below(sum(e["chances"] for e in pool))
                for e in pool:
                    if r < e["chances"]:
                        break
                    r -= e["chances"]
                got.append(e["id"])
                pool = [other for other in pool if other["group"] != e["group"]]
            picks.append(got)
        tiers.append((picks[0], picks[1]))
    return tiers


# --- helpers --------------------------------------------------------------------------


def entries(n: int, *, rng: random.Random, phones: int | None = None) -> list[Entry]:
    """n entries with scattered ids, chances 1-5; ``phones`` distinct phones (default: n)."""
    ids = rng.sample(range(1, 50 * n + 2), n)
    return [
        Entry(
            id=entry_id,
            phone_key=f"+86138{rng.randrange(phones) if phones else entry_id:08d}",
            phone=f"138****{entry_id % 10_000:04d}",
            chances=rng.randint(1, 5),
        )
        for entry_id in ids
    ]


def scripted(*numbers: int) -> Any:
    """A next_u64 that returns these numbers, then fails the test if asked for more."""
    it = iter(numbers)

    def next_u64() -> int:
        return next(it)

    return next_u64


def bundle_dict(proof: Proof) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(encode_proof(proof))
    return result


def signed_round(beacon: FakeDrand, round_number: int) -> DrandRound:
    info = beacon.info
    chain = ChainInfo(
        hash=info["hash"],
        public_key=info["public_key"],
        period=info["period"],
        genesis_time=info["genesis_time"],
        group_hash=info["groupHash"],
        beacon_id=info["metadata"]["beaconID"],
        scheme=info["schemeID"],
    )
    answer = beacon.beacon(round_number)
    return DrandRound(
        round=round_number,
        randomness=answer["randomness"],
        signature=answer["signature"],
        chain=chain,
    )


@pytest.fixture(scope="module")
def beacon() -> FakeDrand:
    return FakeDrand()  # used for its key only: it signs rounds without serving them


def tampered(proof: Proof, **changes: Any) -> Proof:
    return msgspec.structs.replace(proof, **changes)


def codes(found: list[Mismatch]) -> list[str]:
    return [m.code for m in found]


# --- the independent re-implementation agrees --------------------------------------------


@pytest.mark.parametrize(
    ("n", "phones", "rules", "one_win", "with_drand"),
    [
        (1, None, [TierRule("一等奖", 1)], True, False),
        (7, None, [TierRule("A", 2, 1), TierRule("B", 3, 2)], True, False),
        (40, 25, [TierRule("A", 3, 2), TierRule("B", 10, 3)], True, True),
        (40, 25, [TierRule("A", 3, 2), TierRule("B", 10, 3)], False, True),
        (300, 120, [TierRule("A", 5), TierRule("B", 50, 10), TierRule("C", 80, 5)], True, False),
        (6, 3, [TierRule("A", 4, 4), TierRule("B", 2)], False, False),
        (5, 2, [TierRule("A", 10, 3)], True, True),
        (0, None, [TierRule("A", 2, 1)], True, False),
    ],
)
def test_an_independent_implementation_agrees(
    beacon: FakeDrand,
    n: int,
    phones: int | None,
    rules: list[TierRule],
    one_win: bool,
    with_drand: bool,
) -> None:
    rng = random.Random(n * 1000 + (phones or 0))
    seed = rng.randbytes(32)
    frozen = freeze(entries(n, rng=rng, phones=phones))
    drand_round = signed_round(beacon, 4242) if with_drand else None
    proof = prove(seed, frozen, rules, one_win_per_phone=one_win, beacon=drand_round)
    bundle = bundle_dict(proof)
    assert reference_draw(bundle) == [(t["winners"], t["reserves"]) for t in bundle["tiers"]]
    assert hashlib.sha256(seed).hexdigest() == bundle["commitment"]
    assert verify(proof, trusted_chain=beacon.chain) == []


def test_the_worked_example_in_the_docs_is_what_the_code_computes() -> None:
    """docs/draws.md shows a bundle and its winners; both the code and the re-implementation
    must reproduce them, so the page cannot drift from the algorithm."""
    text = DOCS.read_text(encoding="utf-8")
    example = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    bundle = json.loads(example)
    proof = decode_proof(example.encode())
    assert verify(proof) == []
    assert reference_draw(bundle) == [(t["winners"], t["reserves"]) for t in bundle["tiers"]]
    listing = text.split("```text\n", 1)[1].split("\n```", 1)[0] + "\n"
    assert listing.encode() == canonical_bytes(proof.entrants)
    assert hashlib.sha256(listing.encode()).hexdigest() == bundle["entrants_hash"]


# --- same inputs, same winners; any change is seen ------------------------------------------


def test_same_inputs_give_the_same_winners() -> None:
    rng = random.Random(7)
    batch = entries(500, rng=rng, phones=400)
    rules = [TierRule("A", 3, 2), TierRule("B", 20, 5)]
    first = prove(SEED, freeze(batch), rules, one_win_per_phone=True)
    shuffled = list(batch)
    rng.shuffle(shuffled)  # the order the entries arrive in does not matter
    second = prove(SEED, freeze(shuffled), rules, one_win_per_phone=True)
    assert encode_proof(first) == encode_proof(second)


def test_another_seed_gives_another_commitment_and_other_winners() -> None:
    frozen = freeze(entries(500, rng=random.Random(8)))
    rules = [TierRule("A", 10)]
    one = prove(SEED, frozen, rules, one_win_per_phone=True)
    other = prove(bytes(31) + b"\x01", frozen, rules, one_win_per_phone=True)
    assert one.commitment != other.commitment
    assert one.tiers[0].winners != other.tiers[0].winners


def test_a_changed_entrant_list_changes_the_hash_and_is_detected() -> None:
    rng = random.Random(9)
    batch = entries(50, rng=rng)
    frozen = freeze(batch)
    proof = prove(SEED, frozen, [TierRule("A", 5)], one_win_per_phone=True)
    extra = Entry(id=10**6, phone_key="+8613900000000", phone="139****0000", chances=1)
    assert freeze([*batch, extra]).hash != frozen.hash
    assert freeze(batch[1:]).hash != frozen.hash
    more = msgspec.structs.replace(batch[0], chances=batch[0].chances % 5 + 1)
    assert freeze([more, *batch[1:]]).hash != frozen.hash
    # In a bundle: one more chance for one entrant, one entrant fewer, an entrant added.
    entrants = list(proof.entrants)
    changed = [msgspec.structs.replace(entrants[0], chances=entrants[0].chances % 5 + 1)]
    for tampered_list in (
        changed + entrants[1:],
        entrants[1:],
        [*entrants, Entrant(10**6, "139****0000", 1, 10**6)],
    ):
        found = codes(verify(tampered(proof, entrants=tampered_list)))
        assert "entrants_hash" in found
    # A published hash that does not match the published list.
    assert codes(verify(tampered(proof, entrants_hash="0" * 64))) == ["entrants_hash"]
    assert codes(verify(tampered(proof, entrants_count=49))) == ["entrants_count"]


def test_a_changed_seed_or_commitment_is_detected() -> None:
    proof = prove(
        SEED, freeze(entries(30, rng=random.Random(10))), [TierRule("A", 3)], one_win_per_phone=True
    )
    other_seed = tampered(proof, seed=(bytes(31) + b"\x07").hex())
    assert codes(verify(other_seed))[0] == "commitment"
    assert "winners" in codes(verify(other_seed))
    assert codes(verify(tampered(proof, commitment="0" * 64))) == ["commitment"]
    for seed in (proof.seed.upper(), proof.seed[:-2], proof.seed + "00", "z" * 64, ""):
        assert verify(tampered(proof, seed=seed)) == [
            Mismatch("seed", "the seed is not 64 lowercase hex digits (32 bytes)")
        ]


def test_winners_reserves_and_undrawn_prizes_are_recomputed() -> None:
    proof = prove(
        SEED,
        freeze(entries(4, rng=random.Random(11))),
        [TierRule("A", 2, 1), TierRule("B", 3)],
        one_win_per_phone=True,
    )
    a, b = proof.tiers
    assert (len(a.winners), len(a.reserves), len(b.winners), b.undrawn) == (2, 1, 1, 2)
    swapped = [msgspec.structs.replace(a, winners=a.winners[::-1]), b]
    assert verify(tampered(proof, tiers=swapped)) == [
        Mismatch(
            "winners", f"tier 1 (A): the winners are {a.winners}, the bundle says {a.winners[::-1]}"
        )
    ]
    other = [a, msgspec.structs.replace(b, reserves=[a.reserves[0]])]
    assert verify(tampered(proof, tiers=other)) == [
        Mismatch("reserves", f"tier 2 (B): the reserves are [], the bundle says {a.reserves}")
    ]
    hidden = [a, msgspec.structs.replace(b, undrawn=0)]
    assert verify(tampered(proof, tiers=hidden)) == [
        Mismatch("undrawn", "tier 2 (B): the undrawn are 2, the bundle says 0")
    ]
    # Asking for another number of reserves changes the recomputation.
    more = [msgspec.structs.replace(a, reserve_quantity=2), b]
    assert codes(verify(tampered(proof, tiers=more))) == ["reserves", "winners", "undrawn"]


# --- the canonical list ----------------------------------------------------------------


def test_the_canonical_list_is_sorted_by_id_with_phone_groups() -> None:
    frozen = freeze(
        [
            Entry(30, "+8613800000002", "138****0002", 2),
            Entry(7, "+8613800000001", "138****0001", 1),
            Entry(12, "+8613800000002", "138****0002", 5),
            Entry(31, "+8613800000001", "138****0001", 1),
            Entry(1, "+85291234567", "+852****67", 1_000_000),
        ]
    )
    assert frozen.data == (
        b"1\t+852****67\t1000000\t1\n"
        b"7\t138****0001\t1\t7\n"
        b"12\t138****0002\t5\t12\n"
        b"30\t138****0002\t2\t12\n"
        b"31\t138****0001\t1\t7\n"
    )
    assert frozen.hash == hashlib.sha256(frozen.data).hexdigest()
    assert frozen.count == 5
    assert frozen.entrants[3] == Entrant(30, "138****0002", 2, 12)
    assert canonical_bytes(frozen.entrants) == frozen.data
    assert list_problems(frozen) == []
    # The phone keys are nowhere in what is published.
    assert b"+8613800000002" not in frozen.data


def test_an_empty_list_is_canonical() -> None:
    frozen = freeze([])
    assert (frozen.data, frozen.count) == (b"", 0)
    assert frozen.hash == hashlib.sha256(b"").hexdigest()
    assert list_problems(frozen) == []


def test_the_list_bounds_are_the_documented_ones() -> None:
    assert entrant_list.MAX_ENTRANTS == 10_000_000
    assert entrant_list.MAX_CHANCES == 1_000_000
    assert entrant_list.MAX_ENTRY_ID == 2**63 - 1
    assert entrant_list.MAX_PHONE_CHARS == 32
    assert entrant_list.MAX_ENTRANTS * entrant_list.MAX_CHANCES < 2**64
    edge = [
        Entry(1, "a", "1", 1),
        Entry(2**63 - 1, "b", "~" * 32, 1_000_000),
    ]
    assert list_problems(freeze(edge)) == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Entry(0, "x", "138****0000"), "line 1: entry 0: ids ascend, starting from 1"),
        (Entry(-5, "x", "138****0000"), "line 1: entry -5: ids ascend, starting from 1"),
        (Entry(2**63, "x", "138****0000"), "line 3: an id is at most 2**63 - 1"),
        (Entry(5, "x", ""), "line 2: a masked phone is 1 to 32 printable ASCII"),
        (Entry(5, "x", "~" * 33), "line 2: a masked phone is 1 to 32 printable"),
        (Entry(5, "x", "138 0000"), "line 2: a masked phone"),
        (Entry(5, "x", "138\t0000"), "line 2: a masked phone"),
        (Entry(5, "x", "138\n0000"), "line 2: a masked phone"),
        (Entry(5, "x", "138\x7f0000"), "line 2: a masked phone"),
        (Entry(5, "x", "１３８****0000"), "line 2: a masked phone"),
        (Entry(5, "x", "138****0000", 0), "line 2: chances are 1 to 1000000"),
        (Entry(5, "x", "138****0000", -1), "line 2: chances are 1 to 1000000"),
        (Entry(5, "x", "138****0000", 1_000_001), "line 2: chances are 1 to 1000000"),
    ],
)
def test_entries_outside_the_rules_are_refused_at_their_line(bad: Entry, message: str) -> None:
    good = [Entry(3, "a", "138****0003"), Entry(9, "b", "138****0009")]
    with pytest.raises(DrawInputError, match=message.replace("*", r"\*")):
        freeze([*good, bad])


def test_duplicate_entry_ids_are_refused() -> None:
    with pytest.raises(DrawInputError, match=r"^line 3: entry 9: ids ascend, starting from 1$"):
        freeze([Entry(3, "a", "1"), Entry(9, "b", "2"), Entry(9, "c", "3")])


def test_a_published_list_out_of_order_or_with_forged_groups_is_not_canonical() -> None:
    def problems(*rows: tuple[int, str, int, int]) -> list[str]:
        return list_problems(FrozenList.of([Entrant(*row) for row in rows]))

    assert problems((1, "a", 1, 1), (2, "b", 1, 1)) == []
    assert problems((2, "a", 1, 2), (1, "b", 1, 1)) == [
        "line 2: entry 1: ids ascend, starting from 1"
    ]
    # A group must name an earlier entry that leads its own group.
    expected = "line 2: entry 2: group {} is not an earlier entry leading it"
    assert problems((1, "a", 1, 1), (2, "b", 1, 3), (3, "c", 1, 3)) == [expected.format(3)]
    assert problems((1, "a", 1, 1), (2, "b", 1, 0)) == [expected.format(0)]
    assert problems((2, "a", 1, 2), (3, "b", 1, 1)) == [
        "line 2: entry 3: group 1 is not an earlier entry leading it"
    ]
    assert problems((1, "a", 1, 5), (2, "b", 1, 1)) == [
        "line 1: entry 1: group 5 is not an earlier entry leading it"
    ]
    assert problems((1, "a", 1, 1), (2, "b", 1, 1), (3, "c", 1, 2)) == [
        "line 3: entry 3: group 2 is not an earlier entry leading it"
    ]
    # Only the first forged group is named.
    assert len(problems((1, "a", 1, 1), (2, "b", 1, 9), (3, "c", 1, 9))) == 1
    assert problems((1, "a", 0, 1), (2, "b", 1, 2)) == ["line 1: chances are 1 to 1000000"]


def test_more_entrants_than_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(entrant_list, "MAX_ENTRANTS", 3)
    three = [Entry(i, str(i), "1") for i in (1, 2, 3)]
    assert freeze(three).count == 3
    with pytest.raises(DrawInputError, match=r"^more than 3 entrants$"):
        freeze([*three, Entry(4, "4", "1")])


def test_frozen_columns_must_have_one_length() -> None:
    with pytest.raises(ValueError):
        FrozenList([1, 2], ["a"], [1, 1], [1, 2])


# --- the random stream -------------------------------------------------------------------


def test_the_drbg_key_and_blocks_are_hmac_sha256_as_documented() -> None:
    list_hash = hashlib.sha256(b"").digest()
    randomness = bytes(range(100, 132))
    plain = hmac.new(SEED, b"leadkit-draw-v1\x00" + list_hash, hashlib.sha256).digest()
    assert drbg_key(SEED, list_hash, None) == plain
    mixed = hmac.new(SEED, b"leadkit-draw-v1\x00" + list_hash + randomness, "sha256").digest()
    assert drbg_key(SEED, list_hash, randomness) == mixed
    drbg = Drbg(plain)
    stream = b"".join(hmac.new(plain, i.to_bytes(8, "big"), "sha256").digest() for i in (0, 1, 2))
    expected = [int.from_bytes(stream[i : i + 8], "big") for i in range(0, 96, 8)]
    assert [drbg.next_u64() for _ in range(12)] == expected


def test_uniform_draws_without_modulo_bias() -> None:
    top = 2**64 - 1
    # 2**64 = 1 (mod 3): the one number at the top is thrown away, the next one used.
    assert uniform(scripted(top, top - 1), 3) == (top - 1) % 3
    assert uniform(scripted(top - 1), 3) == (top - 1) % 3
    assert uniform(scripted(5), 3) == 2
    assert uniform(scripted(0), 1) == 0
    assert uniform(scripted(top), 1) == 0
    assert uniform(scripted(top), 2**64) == top
    assert uniform(scripted(top), 2**63) == 2**63 - 1
    # n = 2**63 + 1: every number from n up is thrown away (about half of them).
    n = 2**63 + 1
    assert uniform(scripted(n, top, n - 1), n) == n - 1
    assert uniform(scripted(n - 1), n) == n - 1
    # n = 10: the top six numbers (2**64 = 6 mod 10) are the biased ones.
    assert uniform(scripted(top - 5, top - 6, 0), 10) == (top - 6) % 10
    assert uniform(scripted(top - 6), 10) == 9
    for n in (0, -1, 2**64 + 1):
        with pytest.raises(DrawInputError, match=f"cannot draw below {n}"):
            uniform(scripted(), n)


# --- weighted selection -----------------------------------------------------------------


def small(*chances: int, groups: list[int] | None = None) -> FrozenList:
    ids = [10 * (i + 1) for i in range(len(chances))]
    return FrozenList(ids, ["1"] * len(ids), list(chances), groups or ids)


def test_a_pick_lands_on_the_entrant_whose_weight_covers_the_number() -> None:
    # Weights 1, 2, 7: numbers 0 | 1-2 | 3-9 of the 10.
    frozen = small(1, 2, 7)
    one = [TierRule("A", 1)]
    for number, winner in ((0, 10), (1, 20), (2, 20), (3, 30), (9, 30), (19, 30), (13, 30)):
        (tier,) = select(frozen, one, one_win_per_phone=True, next_u64=scripted(number))
        assert tier.winners == (winner,), number
    # Later picks draw below the remaining weight, over the remaining entrants in order.
    three = [TierRule("A", 3)]
    (tier,) = select(frozen, three, one_win_per_phone=True, next_u64=scripted(3, 2, 0))
    assert tier.winners == (30, 20, 10)
    (tier,) = select(frozen, three, one_win_per_phone=True, next_u64=scripted(0, 1, 0))
    assert tier.winners == (10, 20, 30)
    (tier,) = select(frozen, three, one_win_per_phone=True, next_u64=scripted(1, 0, 0))
    assert tier.winners == (20, 10, 30)
    (tier,) = select(frozen, three, one_win_per_phone=True, next_u64=scripted(8, 1, 0))
    assert tier.winners == (30, 20, 10)


def test_a_pick_in_a_large_pool_matches_walking_the_list() -> None:
    rng = random.Random(12)
    weights = [rng.randint(1, 9) for _ in range(1000)]
    frozen = small(*weights)
    numbers = [rng.randrange(2**64) for _ in range(400)]
    (tier,) = select(
        frozen, [TierRule("A", 300)], one_win_per_phone=True, next_u64=scripted(*numbers)
    )
    pool = list(zip(frozen.ids, weights, strict=True))
    stream = iter(numbers)
    expected = []
    for _ in range(300):
        r = uniform(lambda: next(stream), sum(w for _, w in pool))
        index = 0
        while r >= pool[index][1]:
            r -= pool[index][1]
            index += 1
        expected.append(pool.pop(index)[0])
    assert list(tier.winners) == expected


def test_chances_weight_the_draw() -> None:
    """Over 12,000 draws with fixed seeds, each entrant is first drawn in proportion to its
    chances (chi-square below the 0.1 % critical value for 3 degrees of freedom)."""
    frozen = small(1, 2, 3, 4)
    wins: Counter[int] = Counter()
    for i in range(12_000):
        seed = hashlib.sha256(i.to_bytes(4, "big")).digest()
        (tier,) = draw(seed, frozen, [TierRule("A", 1)], one_win_per_phone=True)
        wins[tier.winners[0]] += 1
    expected = {10: 1200, 20: 2400, 30: 3600, 40: 4800}
    chi2 = sum((wins[k] - e) ** 2 / e for k, e in expected.items())
    assert chi2 < 16.27, (wins, chi2)
    # Equal chances: no entrant is favoured by its place in the list either.
    even: Counter[int] = Counter()
    for i in range(4_000):
        seed = hashlib.sha256(b"even" + i.to_bytes(4, "big")).digest()
        (tier,) = draw(seed, small(1, 1, 1, 1), [TierRule("A", 1)], one_win_per_phone=True)
        even[tier.winners[0]] += 1
    assert sum((v - 1000) ** 2 / 1000 for v in even.values()) < 16.27, even


def test_reserves_are_the_next_picks_in_order() -> None:
    frozen = freeze(entries(200, rng=random.Random(13), phones=150))
    (split,) = draw(SEED, frozen, [TierRule("A", 5, 4)], one_win_per_phone=True)
    (whole,) = draw(SEED, frozen, [TierRule("A", 9)], one_win_per_phone=True)
    assert split.winners + split.reserves == whole.winners
    assert len(set(split.winners + split.reserves)) == 9
    # The next tier continues the same stream after the reserves.
    two = draw(SEED, frozen, [TierRule("A", 5, 4), TierRule("B", 3)], one_win_per_phone=True)
    (longer,) = draw(SEED, frozen, [TierRule("A", 12)], one_win_per_phone=True)
    assert two[0].winners + two[0].reserves + two[1].winners == longer.winners


def test_one_win_per_phone_across_tiers() -> None:
    # Phone X has entries 1 and 2, phone Y entry 3.
    frozen = freeze(
        [Entry(1, "X", "138****0001", 5), Entry(2, "X", "138****0001", 5), Entry(3, "Y", "2")]
    )
    assert frozen.groups == [1, 1, 3]
    rules = [TierRule("A", 2), TierRule("B", 2, 1)]
    once = draw(SEED, frozen, rules, one_win_per_phone=True)
    assert sorted(g for g in (frozen.groups[frozen.ids.index(w)] for w in once[0].winners)) == [
        1,
        3,
    ]
    assert once[1] == TierResult("B", 2, 1, (), ())
    assert once[1].undrawn == 2
    # Without the rule each tier draws from everyone again; a phone still wins once per tier.
    again = draw(SEED, frozen, rules, one_win_per_phone=False)
    for tier in again:
        assert len(tier.winners) == 2 and tier.reserves == ()
        assert {frozen.groups[frozen.ids.index(w)] for w in tier.winners} == {1, 3}


def test_a_phones_entries_leave_the_pool_together_over_many_seeds() -> None:
    frozen = freeze(entries(60, rng=random.Random(14), phones=12))
    group_of = dict(zip(frozen.ids, frozen.groups, strict=True))
    for i in range(50):
        seed = hashlib.sha256(b"groups" + bytes([i])).digest()
        tiers = draw(
            seed, frozen, [TierRule("A", 4, 2), TierRule("B", 8, 2)], one_win_per_phone=True
        )
        drawn = [w for t in tiers for w in (*t.winners, *t.reserves)]
        assert len({group_of[w] for w in drawn}) == len(drawn) == 12


def test_fewer_entrants_than_prizes_all_win_and_the_rest_stays_undrawn() -> None:
    frozen = freeze([Entry(i, str(i), "1") for i in (4, 5, 6)])
    first, second = draw(
        SEED, frozen, [TierRule("A", 5, 2), TierRule("B", 1)], one_win_per_phone=True
    )
    assert sorted(first.winners) == [4, 5, 6]
    assert (first.reserves, first.undrawn) == ((), 2)
    assert (second.winners, second.undrawn) == ((), 1)
    (alone,) = draw(SEED, freeze([]), [TierRule("A", 3, 1)], one_win_per_phone=True)
    assert (alone.winners, alone.reserves, alone.undrawn) == ((), (), 3)


def test_a_group_without_its_leader_cannot_be_drawn() -> None:
    forged = FrozenList([1, 2], ["a", "b"], [1, 1], [1, 5])
    with pytest.raises(DrawInputError, match="entry 2: no entry 5 leads its group"):
        select(forged, [TierRule("A", 1)], one_win_per_phone=True, next_u64=scripted(0))
    beyond = FrozenList([1, 2], ["a", "b"], [1, 1], [1, 0])
    with pytest.raises(DrawInputError, match="entry 2: no entry 0 leads its group"):
        select(beyond, [TierRule("A", 1)], one_win_per_phone=True, next_u64=scripted(0))


# --- tier rules ------------------------------------------------------------------------


def test_the_rule_bounds() -> None:
    assert rule_problems([TierRule("x" * 100, 100_000, 10_000)] * 100) == []
    assert rule_problems([TierRule("x", 1, 0)]) == []
    assert rule_problems([]) == ["a draw has 1 to 100 tiers, not 0"]
    assert rule_problems([TierRule("x", 1)] * 101) == ["a draw has 1 to 100 tiers, not 101"]
    assert rule_problems([TierRule("x", 1), TierRule("", 1)]) == [
        "tier 2: the name is 1 to 100 characters"
    ]
    assert rule_problems([TierRule("x" * 101, 1)]) == ["tier 1: the name is 1 to 100 characters"]
    assert rule_problems([TierRule("x", 0)]) == ["tier 1: the quantity is 1 to 100000"]
    assert rule_problems([TierRule("x", 100_001)]) == ["tier 1: the quantity is 1 to 100000"]
    assert rule_problems([TierRule("x", 1, -1)]) == ["tier 1: the reserves are 0 to 10000"]
    assert rule_problems([TierRule("x", 1, 10_001)]) == ["tier 1: the reserves are 0 to 10000"]
    with pytest.raises(DrawInputError, match=r"^tier 1: the quantity is 1 to 100000; tier 2: "):
        draw(SEED, freeze([]), [TierRule("x", 0), TierRule("", 1)], one_win_per_phone=True)


# --- the proof bundle --------------------------------------------------------------------


def test_the_bundle_has_the_documented_shape() -> None:
    frozen = freeze([Entry(5, "a", "138****0005", 2), Entry(8, "b", "139****0008")])
    proof = prove(SEED, frozen, [TierRule("一等奖", 1, 1)], one_win_per_phone=True)
    bundle = bundle_dict(proof)
    assert list(bundle) == [
        "algorithm", "mode", "seed", "commitment", "entrants_hash", "entrants_count",
        "one_win_per_phone", "entrants", "tiers",
    ]  # fmt: skip
    assert bundle["algorithm"] == ALGORITHM == "leadkit-draw-v1"
    assert bundle["mode"] == "commit-reveal"
    assert bundle["seed"] == SEED.hex()
    assert bundle["commitment"] == commitment(SEED) == hashlib.sha256(SEED).hexdigest()
    assert bundle["entrants_hash"] == frozen.hash and bundle["entrants_count"] == 2
    assert bundle["entrants"] == [
        {"id": 5, "phone": "138****0005", "chances": 2, "group": 5},
        {"id": 8, "phone": "139****0008", "chances": 1, "group": 8},
    ]
    (tier,) = bundle["tiers"]
    assert list(tier) == ["name", "quantity", "reserve_quantity", "winners", "reserves", "undrawn"]
    assert (tier["name"], tier["quantity"], tier["reserve_quantity"]) == ("一等奖", 1, 1)
    assert sorted(tier["winners"] + tier["reserves"]) == [5, 8] and tier["undrawn"] == 0
    assert decode_proof(encode_proof(proof)) == proof


def test_the_bundle_with_drand_carries_the_round_and_its_chain(beacon: FakeDrand) -> None:
    frozen = freeze(entries(30, rng=random.Random(15)))
    drand_round = signed_round(beacon, 77)
    proof = prove(SEED, frozen, [TierRule("A", 5)], one_win_per_phone=True, beacon=drand_round)
    bundle = bundle_dict(proof)
    assert bundle["mode"] == "drand"
    assert bundle["drand"]["round"] == 77
    assert bundle["drand"]["randomness"] == drand_round.randomness
    assert bundle["drand"]["chain"]["hash"] == beacon.chain
    assert set(bundle["drand"]["chain"]) == {
        "hash", "public_key", "period", "genesis_time", "group_hash", "beacon_id", "scheme"
    }  # fmt: skip
    # The randomness changes the winners: the same draw without it picks others.
    plain = prove(SEED, frozen, [TierRule("A", 5)], one_win_per_phone=True)
    assert plain.tiers[0].winners != proof.tiers[0].winners
    assert verify(proof, trusted_chain=beacon.chain) == []
    assert verify(proof) == []  # no chain named: the signature is still checked


def test_each_way_the_drand_part_can_be_wrong_is_named(beacon: FakeDrand) -> None:
    frozen = freeze(entries(30, rng=random.Random(16)))
    good = signed_round(beacon, 78)
    proof = prove(SEED, frozen, [TierRule("A", 5)], one_win_per_phone=True, beacon=good)

    def check(**changes: Any) -> list[str]:
        return codes(
            verify(
                tampered(proof, drand=msgspec.structs.replace(good, **changes)),
                trusted_chain=beacon.chain,
            )
        )

    other = signed_round(beacon, 79)
    assert check(signature=other.signature) == ["drand_signature"]
    assert check(round=79) == ["drand_signature"]
    assert check(randomness=other.randomness) == ["drand_randomness", "winners"]
    assert check(randomness=good.randomness.upper()) == ["drand_randomness"]
    assert check(randomness="00") == ["drand_randomness"]
    moved = msgspec.structs.replace(good.chain, genesis_time=good.chain.genesis_time + 1)
    assert check(chain=moved) == ["drand_chain"]
    with FakeDrand() as stranger:
        theirs = signed_round(stranger, 78)
    # A round of another chain, honestly signed: only the trusted chain catches it.
    assert codes(verify(tampered(proof, drand=theirs))) == ["winners"]
    assert codes(verify(tampered(proof, drand=theirs), trusted_chain=beacon.chain)) == [
        "drand_untrusted_chain", "winners"
    ]  # fmt: skip
    assert check(chain=msgspec.structs.replace(good.chain, scheme="pedersen-bls-chained")) == [
        "drand_scheme"
    ]
    broken = msgspec.structs.replace(good.chain, public_key="zz")
    assert check(chain=broken) == ["drand_chain", "drand_signature"]
    message = verify(tampered(proof, drand=msgspec.structs.replace(good, signature="00")))
    assert message[0].message.startswith("drand round 78: round 78: not a G1 signature")
    # The mode must say what the bundle is.
    assert codes(verify(tampered(proof, mode="commit-reveal"))) == ["mode"]
    plain = prove(SEED, frozen, [TierRule("A", 5)], one_win_per_phone=True)
    assert verify(tampered(plain, mode="drand")) == [
        Mismatch("mode", "the mode is 'drand' but the bundle is 'commit-reveal'")
    ]
    assert codes(verify(tampered(plain, drand=good))) == ["mode", "winners"]


def test_each_drand_mismatch_says_what_is_wrong_and_what_was_expected(beacon: FakeDrand) -> None:
    """What a verifier reads (``leadkit draws verify`` prints each as ``MISMATCH code:
    message``): for every kind of drand mismatch, the value found and the value it should be."""
    frozen = freeze(entries(30, rng=random.Random(17)))
    good = signed_round(beacon, 80)
    proof = prove(SEED, frozen, [TierRule("A", 5)], one_win_per_phone=True, beacon=good)

    def check(**changes: Any) -> list[Mismatch]:
        drand = msgspec.structs.replace(good, **changes)
        found = verify(tampered(proof, drand=drand), trusted_chain=beacon.chain)
        return [m for m in found if m.code != "winners"]

    moved = msgspec.structs.replace(good.chain, genesis_time=good.chain.genesis_time + 1)
    assert check(chain=moved) == [
        Mismatch(
            "drand_chain",
            f"the drand chain parameters hash to {chain_hash(moved)}, not the chain {beacon.chain}",
        )
    ]
    broken = msgspec.structs.replace(good.chain, public_key="zz")
    with pytest.raises(ValueError) as why:
        chain_hash(broken)
    assert check(chain=broken)[0] == Mismatch(
        "drand_chain",
        f"the drand chain parameters hash to nothing ({why.value}), not the chain {beacon.chain}",
    )
    with FakeDrand() as stranger:
        theirs = signed_round(stranger, 80)
    assert verify(tampered(proof, drand=theirs), trusted_chain=beacon.chain)[0] == (
        Mismatch(
            "drand_untrusted_chain",
            f"drand chain {stranger.chain} is not the trusted chain {beacon.chain}",
        )
    )
    chained = msgspec.structs.replace(good.chain, scheme="pedersen-bls-chained")
    assert check(chain=chained) == [
        Mismatch(
            "drand_scheme", "drand scheme 'pedersen-bls-chained' is not 'bls-unchained-g1-rfc9380'"
        )
    ]
    assert check(randomness=good.randomness.upper()) == [
        Mismatch("drand_randomness", "the drand randomness is not 64 lowercase hex digits")
    ]
    other = signed_round(beacon, 81)
    assert check(randomness=other.randomness) == [
        Mismatch(
            "drand_randomness",
            f"drand round 80: the randomness is {other.randomness}, "
            f"SHA-256 of the signature is {good.randomness}",
        )
    ]
    with pytest.raises(DrandError) as refused:
        verify_round(good.chain.public_key, 81, good.signature)
    assert check(round=81) == [Mismatch("drand_signature", f"drand round 81: {refused.value}")]
    plain = prove(SEED, frozen, [TierRule("A", 5)], one_win_per_phone=True)
    assert verify(tampered(plain, drand=good))[0] == (
        Mismatch("mode", "the mode is 'commit-reveal' but the bundle is 'drand'")
    )


def test_a_bundle_of_another_algorithm_is_not_recomputed() -> None:
    proof = prove(SEED, freeze([]), [TierRule("A", 1)], one_win_per_phone=True)
    assert verify(tampered(proof, algorithm="leadkit-draw-v2", commitment="x")) == [
        Mismatch("algorithm", "algorithm 'leadkit-draw-v2' is not 'leadkit-draw-v1'")
    ]


def test_a_bundle_with_a_broken_list_or_rules_stops_short_of_the_winners() -> None:
    proof = prove(
        SEED, freeze(entries(5, rng=random.Random(17))), [TierRule("A", 2)], one_win_per_phone=True
    )
    entrants = list(proof.entrants)
    unsorted = [entrants[1], entrants[0], *entrants[2:]]
    assert codes(verify(tampered(proof, entrants=unsorted))) == ["entrants", "entrants_hash"]
    no_tiers = verify(tampered(proof, tiers=[]))
    assert no_tiers == [Mismatch("tiers", "a draw has 1 to 100 tiers, not 0")]
    zero = [msgspec.structs.replace(proof.tiers[0], quantity=0)]
    assert codes(verify(tampered(proof, tiers=zero))) == ["tiers"]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[]",
        b'{"algorithm": "leadkit-draw-v1"}',
        b'{"algorithm": 1}',
    ],
)
def test_what_is_not_a_bundle_is_refused_clearly(data: bytes) -> None:
    with pytest.raises(DrawInputError, match=r"^not a draw proof bundle: "):
        decode_proof(data)


def test_entrant_numbers_of_the_wrong_type_are_not_a_bundle() -> None:
    proof = prove(SEED, freeze([Entry(1, "a", "1")]), [TierRule("A", 1)], one_win_per_phone=True)
    bundle = bundle_dict(proof)
    bundle["entrants"][0]["chances"] = "1"
    with pytest.raises(DrawInputError, match=r"Expected `int`, got `str` - at `\$.entrants"):
        decode_proof(json.dumps(bundle).encode())


def test_the_seed_comes_from_the_csprng() -> None:
    seeds = {new_seed() for _ in range(20)}
    assert len(seeds) == 20 and all(len(s) == 32 for s in seeds)


# --- leadkit draws verify ------------------------------------------------------------------


def run_verify(tmp_path: Path, data: bytes, *args: str) -> Any:
    path = tmp_path / "proof.json"
    path.write_bytes(data)
    return CliRunner().invoke(main, ["draws", "verify", str(path), *args], env={})


def test_the_command_recomputes_a_good_bundle(tmp_path: Path, beacon: FakeDrand) -> None:
    frozen = freeze([Entry(i, str(i), f"138****{i:04d}") for i in range(1, 4)])
    drand_round = signed_round(beacon, 10)
    proof = prove(
        SEED,
        frozen,
        [TierRule("一等奖", 1, 1), TierRule("B", 3)],
        one_win_per_phone=True,
        beacon=drand_round,
    )
    result = run_verify(tmp_path, encode_proof(proof), "--chain", beacon.chain)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    a, b = proof.tiers
    assert lines[0] == "algorithm leadkit-draw-v1, mode drand"
    assert lines[1].startswith(f"drand round 10 of chain {beacon.chain}, produced ")
    assert lines[2:] == [
        f"seed commitment {commitment(SEED)}",
        f"entrants 3, list SHA-256 {frozen.hash}",
        "one win per phone: yes",
        f"tier 1 '一等奖': 1 prizes, winners {a.winners[0]}; reserves {a.reserves[0]}",
        f"tier 2 'B': 3 prizes, winners {b.winners[0]}; 2 undrawn (fewer entrants than prizes)",
        "ok: the commitment, the list and every winner and reserve recompute exactly",
    ]


def test_the_command_fails_on_a_mismatch_and_names_it(tmp_path: Path) -> None:
    frozen = freeze([Entry(i, str(i), "1") for i in range(1, 6)])
    proof = prove(SEED, frozen, [TierRule("A", 2)], one_win_per_phone=False)
    forged = [msgspec.structs.replace(proof.tiers[0], winners=[1, 2])]
    if forged[0].winners == proof.tiers[0].winners:
        forged = [msgspec.structs.replace(proof.tiers[0], winners=[3, 4])]
    result = run_verify(tmp_path, encode_proof(tampered(proof, tiers=forged, commitment="0")))
    assert result.exit_code == 1
    assert "one win per phone: no" in result.output
    assert "MISMATCH commitment: SHA-256 of the seed is" in result.output
    assert "MISMATCH winners: tier 1 (A): the winners are" in result.output
    assert result.output.splitlines()[-1] == "FAILED: 2 mismatches"
    one = run_verify(tmp_path, encode_proof(tampered(proof, commitment="0")))
    assert one.exit_code == 1 and one.output.splitlines()[-1] == "FAILED: 1 mismatch"


def _one_entrant_with_drand(beacon: FakeDrand) -> Proof:
    """A one-prize draw of one entrant, mixed with round 3 of the fake beacon's chain."""
    return prove(
        SEED,
        freeze([Entry(1, "a", "1")]),
        [TierRule("A", 1)],
        one_win_per_phone=True,
        beacon=signed_round(beacon, 3),
    )


def test_the_command_trusts_the_configured_drand_chain(tmp_path: Path, beacon: FakeDrand) -> None:
    proof = _one_entrant_with_drand(beacon)
    # A third party's machine: no settings, so quicknet is the chain trusted.
    result = run_verify(tmp_path, encode_proof(proof))
    assert result.exit_code == 1
    assert (
        f"MISMATCH drand_untrusted_chain: drand chain {beacon.chain} is not the trusted "
        f"chain {QUICKNET_CHAIN}" in result.output
    )
    path = tmp_path / "proof.json"
    configured = CliRunner().invoke(
        main, ["draws", "verify", str(path)], env={"LEADKIT_DRAND_CHAIN": beacon.chain}
    )
    assert configured.exit_code == 0, configured.output


def test_the_command_reads_standard_input_and_refuses_what_is_not_a_bundle(
    tmp_path: Path,
) -> None:
    proof = prove(SEED, freeze([]), [TierRule("A", 1)], one_win_per_phone=True)
    piped = CliRunner().invoke(main, ["draws", "verify", "-"], input=encode_proof(proof), env={})
    assert piped.exit_code == 0, piped.output
    assert "tier 1 'A': 1 prizes, winners none; 1 undrawn" in piped.output
    garbage = run_verify(tmp_path, b"{oops")
    assert garbage.exit_code == 1
    assert garbage.output.startswith("Error: not a draw proof bundle: JSON is malformed")
    missing = CliRunner().invoke(main, ["draws", "verify", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "No such file" in missing.output


def test_a_hostile_bundle_is_refused_without_a_crash(tmp_path: Path, beacon: FakeDrand) -> None:
    proof = _one_entrant_with_drand(beacon)
    bundle = bundle_dict(proof)
    huge = 10**30
    bundle["entrants"][0].update(id=huge, chances=huge, group=huge)
    bundle["tiers"][0].update(quantity=huge, reserve_quantity=-huge, undrawn=huge)
    bundle["drand"].update(round=huge, signature="", randomness="")
    bundle["drand"]["chain"].update(period=huge, genesis_time=-huge, public_key="")
    result = run_verify(tmp_path, json.dumps(bundle).encode(), "--chain", beacon.chain)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    found = {line.split(":")[0] for line in result.output.splitlines() if "MISMATCH" in line}
    assert found == {
        "MISMATCH entrants", "MISMATCH entrants_hash", "MISMATCH drand_chain",
        "MISMATCH drand_randomness", "MISMATCH tiers",
    }  # fmt: skip
