"""A fake drand beacon on 127.0.0.1 that speaks drand's HTTP API with real quicknet-format
rounds: ``GET /{chain}/info`` and ``GET /{chain}/public/{round}``.

It holds a BLS12-381 key pair of its own and signs each round the way quicknet does
(``bls-unchained-g1-rfc9380``: a G1 signature over SHA-256 of the round as 8 bytes big-endian,
hashed to G1 with the RFC 9380 suite's DST, the public key on G2; randomness is SHA-256 of the
signature), and computes its chain hash the way drand does. Nothing here imports app code, so
a mistake in the app's verification shows up as a refusal of the fake's honest rounds.

``FakeDrand.genuine()`` serves the real quicknet chain information and the real published
round 1000 instead (it cannot sign others: it has no key).

Usage::

    with FakeDrand() as beacon:
        client = DrandClient(beacon.url, beacon.chain)
        await client.fetch(beacon.latest_round())
        beacon.corrupt_next()                       # the next round is signed for another round
        beacon.answer_raw_next(500, b"oops")        # the next request gets this raw answer
        beacon.stall_next(2.0)                      # the next request waits 2 s first
        FakeDrand(answer_any_chain=True)            # serves its chain under any chain hash
        beacon.requests                             # paths asked for, in order
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from py_arkworks_bls12381 import G1Point, G2Point, Scalar

SCHEME = "bls-unchained-g1-rfc9380"
DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
# The real quicknet chain (League of Entropy), as its /info serves it, and one real round.
QUICKNET_INFO: dict[str, Any] = {
    "public_key": "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c"
    "8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd27"
    "4ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
    "period": 3,
    "genesis_time": 1692803367,
    "hash": "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
    "groupHash": "f477d5c89f21a17c863a7f937c6a6d15859414d2be09cd448d4279af331c5d3e",
    "schemeID": SCHEME,
    "metadata": {"beaconID": "quicknet"},
}
QUICKNET_ROUND_1000: dict[str, Any] = {
    "round": 1000,
    "randomness": "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd",
    "signature": "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2"
    "bacbe47e4b6b63ed5e39",
}
# The order of the BLS12-381 groups: secret keys are numbers below it.
GROUP_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001


def drand_chain_hash(info: dict[str, Any]) -> str:
    """drand's Info.Hash(): SHA-256(period u32 BE, genesis i64 BE, key, group hash, beacon id
    unless it is the default chain's)."""
    beacon_id = info["metadata"]["beaconID"]
    data = struct.pack(">I", info["period"]) + struct.pack(">q", info["genesis_time"])
    data += bytes.fromhex(info["public_key"]) + bytes.fromhex(info["groupHash"])
    if beacon_id not in ("", "default"):
        data += beacon_id.encode()
    return hashlib.sha256(data).hexdigest()


class FakeDrand:
    def __init__(
        self,
        *,
        period: int = 3,
        genesis_time: int | None = None,
        beacon_id: str = "fakenet",
        scheme: str = SCHEME,
        answer_any_chain: bool = False,
    ) -> None:
        """``answer_any_chain``: serve this chain under whatever chain hash is asked for, as a
        misconfigured or hostile beacon would."""
        self._secret: Scalar | None = Scalar(secrets.randbelow(GROUP_ORDER - 1) + 1)
        now = int(time.time())
        info: dict[str, Any] = {
            "public_key": (G2Point() * self._secret).to_compressed_bytes().hex(),
            "period": period,
            "genesis_time": now - 3000 * period if genesis_time is None else genesis_time,
            "groupHash": secrets.token_hex(32),
            "schemeID": scheme,
            "metadata": {"beaconID": beacon_id},
        }
        info["hash"] = drand_chain_hash(info)
        self.info = info
        self._fixed: dict[int, dict[str, Any]] = {}
        self.requests: list[str] = []
        self._next: deque[tuple[str, Any]] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._any_chain = answer_any_chain

    @classmethod
    def genuine(cls) -> FakeDrand:
        """The real quicknet chain information and its real round 1000, nothing else."""
        fake = cls()
        fake._secret = None
        fake.info = dict(QUICKNET_INFO)
        fake._fixed = {1000: dict(QUICKNET_ROUND_1000)}
        return fake

    @property
    def chain(self) -> str:
        return str(self.info["hash"])

    @property
    def url(self) -> str:
        assert self._server is not None, "start the beacon first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def latest_round(self) -> int:
        return (int(time.time()) - self.info["genesis_time"]) // self.info["period"] + 1

    def sign(self, round_number: int) -> str:
        """This beacon's signature of a round, hex (48 bytes, compressed G1)."""
        assert self._secret is not None, "the genuine quicknet beacon has no key"
        message = hashlib.sha256(round_number.to_bytes(8, "big")).digest()
        return (G1Point.hash_to_curve(message, DST) * self._secret).to_compressed_bytes().hex()

    def beacon(self, round_number: int) -> dict[str, Any]:
        """The JSON drand serves for a round."""
        if round_number in self._fixed:
            return dict(self._fixed[round_number])
        signature = self.sign(round_number)
        randomness = hashlib.sha256(bytes.fromhex(signature)).hexdigest()
        return {"round": round_number, "randomness": randomness, "signature": signature}

    # --- what the next request gets -------------------------------------------------

    def corrupt_next(self) -> None:
        """The next round answer carries the signature of the round after it."""
        self._push("corrupt", None)

    def answer_raw_next(self, status: int, body: bytes) -> None:
        self._push("raw", (status, body))

    def stall_next(self, seconds: float) -> None:
        self._push("stall", seconds)

    def _push(self, kind: str, value: Any) -> None:
        with self._lock:
            self._next.append((kind, value))

    def _pop(self) -> tuple[str, Any] | None:
        with self._lock:
            return self._next.popleft() if self._next else None

    # --- the server -------------------------------------------------------------------

    def __enter__(self) -> FakeDrand:
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                beacon.requests.append(self.path)
                forced = beacon._pop()
                if forced and forced[0] == "stall":
                    time.sleep(forced[1])
                    forced = None
                if forced and forced[0] == "raw":
                    self._send(forced[1][0], forced[1][1])
                    return
                status, body = beacon._answer(self.path, corrupt=bool(forced))
                self._send(status, json.dumps(body).encode())

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll: shutdown() waits for it, and tests start and stop many beacons.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(self, path: str, *, corrupt: bool) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if len(parts) < 2 or (parts[0] != self.chain and not self._any_chain):
            return 404, {"error": "unknown chain"}
        if parts[1:] == ["info"]:
            return 200, self.info
        if len(parts) == 3 and parts[1] == "public" and parts[2].isdigit():
            round_number = int(parts[2])
            if round_number in self._fixed:
                return 200, self.beacon(round_number)
            if self._secret is None or not 1 <= round_number <= self.latest_round():
                return 404, {"error": "round not found"}
            answer = self.beacon(round_number)
            if corrupt:
                other = self.beacon(round_number + 1)
                answer.update(signature=other["signature"], randomness=other["randomness"])
            return 200, answer
        return 404, {"error": "not found"}
