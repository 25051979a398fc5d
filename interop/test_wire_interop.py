"""An independent implementation of mpay's envelope, written from
docs/wire-format.md alone (PyNaCl for Ed25519 and X25519, pyhpke for RFC 9180).

It checks mpay's vectors (docs/wire-vectors.json, -interbank.json and
-semops.json) byte for byte, opens every sealed frame, verifies the signed
SEMOPS objects (§15), opens the shared shipping details as their merchant
(§15.10), and seals frames of its own that `mpay wire open` must
accept, and refuse once a bit is flipped. Run by .ci/run with pytest; MPAY_BIN names
the mpay binary (default: target/debug/mpay).
"""

import base64
import json
import os
import secrets
import struct
import subprocess
import time
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.signing
import pytest
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

ROOT = Path(__file__).resolve().parent.parent
VECTORS = [
    v
    for name in ("wire-vectors.json", "wire-vectors-interbank.json",
                 "wire-vectors-semops.json")
    for v in json.loads((ROOT / "docs" / name).read_text())["vectors"]
]
MPAY = os.environ.get(
    "MPAY_BIN",
    str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "mpay"),
)

# §4: header 68 bytes; HPKE info "mpay/v1/hpke" || version; tag for signatures.
HEADER_LEN = 68
ENVELOPE_VERSION = 1
SUITE_ED25519_X25519 = 0x01
HPKE_INFO = b"mpay/v1/hpke" + bytes([ENVELOPE_VERSION])
ENVELOPE_TAG = b"mpay/v1/envelope\x00"
BROADCAST_BIT = 0x8000
SUITE = CipherSuite.new(
    KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305
)

PARTIES = {v["name"]: v for v in VECTORS if v["type"] == "party"}
FRAMES = [v for v in VECTORS if v["type"] == "frame"]
SEALED = [v for v in FRAMES if v["receiver"] != "broadcast"]
OBJECTS = [v for v in VECTORS if v["type"] == "object"]
SEMOPS = {v["name"]: v for v in json.loads(
    (ROOT / "docs" / "wire-vectors-semops.json").read_text())["vectors"]}


def h(text):
    return bytes.fromhex(text)


def parse_header(frame):
    if len(frame) < HEADER_LEN:
        raise ValueError("frame shorter than a header")
    version, suite, kind = struct.unpack(">BBH", frame[0:4])
    sender, receiver, tx_id = frame[4:20], frame[20:36], frame[36:52]
    nonce, sent_at = struct.unpack(">QQ", frame[52:68])
    return dict(version=version, suite=suite, kind=kind, sender=sender,
                receiver=receiver, tx_id=tx_id, nonce=nonce, sent_at=sent_at)


def header_bytes(version, suite, kind, sender, receiver, tx_id, nonce, sent_at):
    return (struct.pack(">BBH", version, suite, kind) + sender + receiver + tx_id
            + struct.pack(">QQ", nonce, sent_at))


def clamp(sk):
    """RFC 7748 clamping; RFC 9180 §7.1.2 serializes X25519 secrets clamped
    (pyhpke returns them unclamped; the public key is the same)."""
    b = bytearray(sk)
    b[0] &= 248
    b[31] &= 127
    b[31] |= 64
    return bytes(b)


def signing_key(party):
    return nacl.signing.SigningKey(h(party["ed25519_seed"]))


def x25519_secret(party):
    return SUITE.kem.deserialize_private_key(h(party["x25519_secret"]))


def x25519_public(party):
    return SUITE.kem.deserialize_public_key(h(party["x25519_public"]))


def open_sealed(frame, receiver):
    """§4.3: header || enc(32) || u32 L || ciphertext(L); AAD is the header."""
    head = frame[:HEADER_LEN]
    enc = frame[HEADER_LEN:HEADER_LEN + 32]
    (length,) = struct.unpack(">I", frame[HEADER_LEN + 32:HEADER_LEN + 36])
    ciphertext = frame[HEADER_LEN + 36:]
    if len(ciphertext) != length:
        raise ValueError("ciphertext length differs from L")
    ctx = SUITE.create_recipient_context(enc, x25519_secret(receiver), info=HPKE_INFO)
    plaintext = ctx.open(ciphertext, aad=head)
    (plen,) = struct.unpack(">I", plaintext[:4])
    payload = plaintext[4:4 + plen]
    signature = plaintext[4 + plen:]
    if len(payload) != plen or len(signature) != 64:
        raise ValueError("plaintext is not u32 length || payload || signature")
    return head, payload, signature, plaintext


def verify(sender, head, payload, signature):
    """Strict Ed25519 over ENVELOPE tag || header || payload (§4.2)."""
    key = nacl.signing.VerifyKey(h(sender["ed25519_public"]))
    key.verify(ENVELOPE_TAG + head + payload, signature)


def seal(sender, receiver, kind, payload, sent_at, nonce, tx_id=bytes(16), eks=None):
    head = header_bytes(ENVELOPE_VERSION, SUITE_ED25519_X25519, kind,
                        h(sender["party_id"]), h(receiver["party_id"]), tx_id, nonce, sent_at)
    signature = signing_key(sender).sign(ENVELOPE_TAG + head + payload).signature
    plaintext = struct.pack(">I", len(payload)) + payload + signature
    enc, ctx = SUITE.create_sender_context(x25519_public(receiver), info=HPKE_INFO, eks=eks)
    ciphertext = ctx.seal(plaintext, aad=head)
    return head + enc + struct.pack(">I", len(ciphertext)) + ciphertext


@pytest.mark.parametrize("name", sorted(PARTIES))
def test_party_keys_derive_as_documented(name):
    p = PARTIES[name]
    seed64 = h(p["seed64"])
    assert h(p["ed25519_seed"]) == seed64[:32]
    assert signing_key(p).verify_key.encode() == h(p["ed25519_public"])
    pair = SUITE.kem.derive_key_pair(seed64[32:])
    assert clamp(pair.private_key.to_private_bytes()) == h(p["x25519_secret"])
    # The stored X25519 secret is clamped (RFC 7748): low 3 bits clear,
    # bit 255 clear, bit 254 set.
    sk = h(p["x25519_secret"])
    assert sk[0] & 7 == 0 and sk[31] & 0x80 == 0 and sk[31] & 0x40
    assert nacl.bindings.crypto_scalarmult_base(sk) == h(p["x25519_public"])
    assert h(p["secret_key_file"]) == bytes([1]) + h(p["ed25519_seed"]) + sk
    assert h(p["public_keys"]) == bytes([1]) + h(p["ed25519_public"]) + h(p["x25519_public"])


@pytest.mark.parametrize("v", SEALED, ids=[v["name"] for v in SEALED])
def test_sealed_vector_opens_and_verifies(v):
    frame = h(v["frame"])
    hd = parse_header(frame)
    assert frame[:HEADER_LEN] == h(v["header"])
    assert hd["version"] == ENVELOPE_VERSION and hd["suite"] == SUITE_ED25519_X25519
    assert f"0x{hd['kind']:04x}" == v["kind"] and not hd["kind"] & BROADCAST_BIT
    receiver, sender = PARTIES[v["receiver"]], PARTIES[v["sender"]]
    assert hd["receiver"] == h(receiver["party_id"])
    assert hd["sender"] == h(sender["party_id"])
    head, payload, signature, plaintext = open_sealed(frame, receiver)
    assert plaintext == h(v["plaintext"])
    assert payload == h(v["payload"]) and signature == h(v["signature"])
    verify(sender, head, payload, signature)
    # The ephemeral key: DeriveKeyPair(ikm_e); enc is its public key.
    eph = SUITE.kem.derive_key_pair(h(v["ikm_e"]))
    if "sk_e" in v:
        assert clamp(eph.private_key.to_private_bytes()) == h(v["sk_e"])
    assert eph.public_key.to_public_bytes() == h(v["enc"])
    # Sealing again with the same ephemeral key gives the same frame.
    again = seal(sender, receiver, hd["kind"], payload, hd["sent_at"], hd["nonce"],
                 hd["tx_id"], eks=eph)
    assert again == frame


def test_broadcast_vector_verifies():
    [v] = [v for v in FRAMES if v["receiver"] == "broadcast"]
    frame = h(v["frame"])
    hd = parse_header(frame)
    assert hd["kind"] & BROADCAST_BIT and hd["receiver"] == bytes(16)
    (plen,) = struct.unpack(">I", frame[HEADER_LEN:HEADER_LEN + 4])
    payload = frame[HEADER_LEN + 4:HEADER_LEN + 4 + plen]
    signature = frame[HEADER_LEN + 4 + plen:]
    assert len(signature) == 64 and payload == h(v["payload"])
    verify(PARTIES[v["sender"]], frame[:HEADER_LEN], payload, signature)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify(PARTIES[v["sender"]], frame[:HEADER_LEN], payload + b"\x00", signature)


def test_a_flipped_bit_does_not_open():
    v = SEALED[0]
    frame = bytearray(h(v["frame"]))
    frame[-1] ^= 1
    with pytest.raises(Exception):
        open_sealed(bytes(frame), PARTIES[v["receiver"]])


def mpay_open(tmp_path, frame, receiver="bob", sender="alice"):
    keys = tmp_path / f"{receiver}.key"
    keys.write_text(PARTIES[receiver]["secret_key_file"])
    pub = tmp_path / f"{sender}.pub"
    pub.write_text(PARTIES[sender]["public_keys"])
    return subprocess.run(
        [MPAY, "wire", "open", "--keys", str(keys), "--sender", str(pub), frame.hex()],
        capture_output=True, text=True, check=False,
    )


def fresh_abort():
    """An ABORT (0x0105, reason 1 SellerDecided) from Alice to Bob, sent now."""
    now = int(time.time() * 1000)
    return seal(PARTIES["alice"], PARTIES["bob"], 0x0105, b"\x01", now,
                secrets.randbits(64), secrets.token_bytes(16))


def test_mpay_opens_a_frame_sealed_here(tmp_path):
    frame = fresh_abort()
    out = mpay_open(tmp_path, frame)
    assert out.returncode == 0, out.stderr
    opened = json.loads(out.stdout)
    assert opened["payload"]["hex"] == "01"
    assert opened["header"]["kind"] == "0x0105"
    assert opened["signature_valid"] is True


@pytest.mark.parametrize("byte", [30, 60 - 1, 70, 110, -1])
def test_mpay_refuses_a_bit_flipped_frame_sealed_here(tmp_path, byte):
    frame = bytearray(fresh_abort())
    frame[byte] ^= 1
    out = mpay_open(tmp_path, bytes(frame))
    assert out.returncode == 2, out.stdout
    assert out.stderr.startswith("refused: "), out.stderr


def test_mpay_refuses_a_frame_signed_by_someone_else(tmp_path):
    frame = fresh_abort()
    out = mpay_open(tmp_path, frame, sender="office")
    assert out.returncode == 2
    assert "signature does not verify" in out.stderr


# ---- SEMOPS (§15) ---------------------------------------------------------

# §15.6: every signature inside a SEMOPS payload is over tag || body.
SEMOPS_TAGS = {
    "trans": b"mpay/v1/semops-trans\x00",
    "merchant-decision": b"mpay/v1/semops-merchant-decision\x00",
}
KIND_MERCHANT_DECISION = 0x0403
REQUEST_LIFETIME_DEFAULT_MS = 300_000


class Reader:
    """Big-endian fields in order (§2); every read checks the bytes left."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, n):
        if self.at + n > len(self.data):
            raise ValueError("unexpected end")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def text(self, limit):
        n = self.u16()
        if n > limit:
            raise ValueError("too long")
        return self.take(n).decode("utf-8")

    def amount(self):
        currency = self.take(3).decode("ascii")
        (minor,) = struct.unpack(">q", self.take(8))
        return currency, minor

    def finish(self):
        if self.at != len(self.data):
            raise ValueError("trailing bytes")


def read_trans(r):
    """§15.5 Trans; returns its fields and the body bytes it was read from."""
    start = r.at
    t = dict(merchant=r.take(16), mpp=r.take(16), amount=r.amount(),
             reference=r.text(64), expires_at=r.u64(), description=r.text(1024),
             nonce=r.take(16))
    return t, r.data[start:r.at]


def read_decision(r):
    start = r.at
    d = dict(payment_id=r.take(16), merchant=r.take(16), decision=r.u8())
    if d["decision"] == 2:
        d["reason"] = r.text(256)
    elif d["decision"] != 1:
        raise ValueError("unknown decision")
    d["signed_at"], d["expires_at"] = r.u64(), r.u64()
    return d, r.data[start:r.at]


def party_by_id(party_id):
    [p] = [p for p in PARTIES.values() if h(p["party_id"]) == party_id]
    return p


def verify_object(signer, tag, body, signature):
    nacl.signing.VerifyKey(h(signer["ed25519_public"])).verify(tag + body, signature)


@pytest.mark.parametrize("v", OBJECTS, ids=[v["name"] for v in OBJECTS])
def test_semops_signed_object_verifies(v):
    tag, body, signature = h(v["tag"]), h(v["body"]), h(v["signature"])
    assert h(v["signed"]) == body + signature
    assert tag.startswith(b"mpay/v1/semops-") and tag.endswith(b"\x00")
    verify_object(PARTIES[v["signer"]], tag, body, signature)
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify_object(PARTIES[v["signer"]], tag, body[:-1] + bytes([body[-1] ^ 1]), signature)


def test_the_pr_carries_a_trans_its_merchant_signed():
    """Open the PR with the CPP's keys, read the TRANS, check the merchant's
    signature and that the TRANS URI carries the same bytes."""
    v = SEMOPS["PAYMENT_REQUEST"]
    cpp = PARTIES[v["receiver"]]
    head, payload, signature, _ = open_sealed(h(v["frame"]), cpp)
    verify(PARTIES[v["sender"]], head, payload, signature)
    r = Reader(payload)
    trans, body = read_trans(r)
    trans_signature = r.take(64)
    customer, cpp_id, pin, key = r.text(64), r.take(16), r.text(12), r.take(16)
    assert r.u8() == 1, "the vector's PR shares shipping details"
    shipping = read_sealed_shipping(r)
    r.finish()
    assert customer == "alice" and pin == "1234" and cpp_id == h(cpp["party_id"])
    assert key == parse_header(h(v["frame"]))["tx_id"]
    assert shipping == h(SEMOPS["shipping"]["sealed"])
    assert trans["amount"] == ("EUR", 1250) and trans["reference"] == "order-7"
    merchant = party_by_id(trans["merchant"])
    verify_object(merchant, SEMOPS_TAGS["trans"], body, trans_signature)
    uri = SEMOPS["TRANS"]["uri"]
    prefix = "mpay:trans?v=1&d="
    assert uri.startswith(prefix)
    data = uri[len(prefix):]
    assert "=" not in data
    assert base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)) == body + trans_signature


SHIPPING_INFO = b"mpay/v1/semops-shipping\x00"
SHIPPING_TEXT_LEN_MAX = 1024
SHIPPING_CIPHERTEXT_LEN_MAX = 2 + SHIPPING_TEXT_LEN_MAX + 16


def read_sealed_shipping(r):
    """§15.10 SealedShipping: version 1 || enc[32] || u16 L || ciphertext."""
    start = r.at
    if r.u8() != 1:
        raise ValueError("unknown shipping version")
    r.take(32)
    n = r.u16()
    if not 16 <= n <= SHIPPING_CIPHERTEXT_LEN_MAX:
        raise ValueError("shipping ciphertext length")
    r.take(n)
    return r.data[start:r.at]


def open_shipping(sealed, merchant, trans_nonce):
    """§15.10: HPKE base mode to the merchant's X25519 key, info SHIPPING,
    aad = merchant id || TRANS nonce; the plaintext is text(1024)."""
    enc, ciphertext = sealed[1:33], sealed[35:]
    ctx = SUITE.create_recipient_context(enc, x25519_secret(merchant), info=SHIPPING_INFO)
    r = Reader(ctx.open(ciphertext, aad=h(merchant["party_id"]) + trans_nonce))
    text = r.text(SHIPPING_TEXT_LEN_MAX)
    r.finish()
    return text


def test_shipping_details_open_with_the_merchant_key_only():
    """The PR's sealed shipping details open for the TRANS's merchant, with
    that TRANS's nonce, and for no processor; the PN carries them unchanged;
    sealing again with the same ephemeral key gives the same bytes."""
    v = SEMOPS["shipping"]
    sealed = h(v["sealed"])
    r = Reader(sealed)
    assert read_sealed_shipping(r) == sealed
    r.finish()
    trans, _ = read_trans(Reader(h(SEMOPS["TRANS"]["body"])))
    merchant = PARTIES[v["merchant"]]
    assert trans["merchant"] == h(merchant["party_id"])
    assert h(v["aad"]) == trans["merchant"] + trans["nonce"]
    assert h(v["info"]) == SHIPPING_INFO
    text = open_shipping(sealed, merchant, trans["nonce"])
    assert text == v["text"] == "Alice\n1 Rue de la Paix\n75002 Paris"
    assert h(v["plaintext"]) == struct.pack(">H", len(text.encode())) + text.encode()
    for other in ("cpp", "dc", "mpp", "customer"):
        with pytest.raises(Exception):
            open_shipping(sealed, PARTIES[other], trans["nonce"])
    with pytest.raises(Exception):
        open_shipping(sealed, merchant, bytes(16))
    assert sealed in h(SEMOPS["PN"]["body"])
    eph = SUITE.kem.derive_key_pair(h(v["ikm_e"]))
    assert eph.public_key.to_public_bytes() == h(v["enc"]) == sealed[1:33]
    enc, ctx = SUITE.create_sender_context(x25519_public(merchant), info=SHIPPING_INFO, eks=eph)
    again = ctx.seal(h(v["plaintext"]), aad=h(v["aad"]))
    assert bytes([1]) + enc + struct.pack(">H", len(again)) + again == sealed


def test_the_decision_relay_carries_a_decision_its_merchant_signed():
    v = SEMOPS["DECISION_RELAY"]
    head, payload, signature, _ = open_sealed(h(v["frame"]), PARTIES[v["receiver"]])
    verify(PARTIES[v["sender"]], head, payload, signature)
    r = Reader(payload)
    assert r.u8() == 1  # authority: the merchant's decision
    decision, body = read_decision(r)
    decision_signature = r.take(64)
    assert decision["decision"] == 1
    assert decision["expires_at"] - decision["signed_at"] == REQUEST_LIFETIME_DEFAULT_MS
    verify_object(party_by_id(decision["merchant"]), SEMOPS_TAGS["merchant-decision"], body,
                  decision_signature)
    mpp, payout_bank, account = r.take(16), r.take(16), r.text(128)
    relay_signature = r.take(64)
    r.finish()
    assert account == "shop:bob"
    relay_body = payload[:len(payload) - 64]
    verify_object(party_by_id(mpp), b"mpay/v1/semops-decision-relay\x00", relay_body,
                  relay_signature)


def read_standing(r):
    """§15.5 StandingApproval; its fields and the body bytes it was read from."""
    start = r.at
    a = dict(merchant=r.take(16), mpp=r.take(16), per_payment_max=r.amount(),
             period_max=r.amount(), period_ms=r.u64(), signed_at=r.u64(),
             expires_at=r.u64())
    return a, r.data[start:r.at]


def test_a_standing_approval_relay_carries_an_approval_its_merchant_signed():
    [v] = [o for o in OBJECTS if o["name"] == "DecisionRelay standing"]
    r = Reader(h(v["body"]))
    assert r.u8() == 2  # authority: a standing approval applied to a payment
    payment_id = r.take(16)
    approval, body = read_standing(r)
    approval_signature = r.take(64)
    mpp, payout_bank, account = r.take(16), r.take(16), r.text(128)
    r.finish()
    assert payment_id == bytes([0x11]) * 16 and account == "shop:bob"
    assert approval["mpp"] == mpp
    assert approval["per_payment_max"][0] == approval["period_max"][0] == "EUR"
    assert 0 < approval["per_payment_max"][1] <= approval["period_max"][1]
    assert 60_000 <= approval["period_ms"] <= 31 * 24 * 3_600_000
    assert approval["signed_at"] < approval["expires_at"]
    verify_object(party_by_id(approval["merchant"]),
                  b"mpay/v1/semops-standing-approval\x00", body, approval_signature)


def fresh_decision():
    """A merchant's approval, signed and sealed here to its MPP, sent now."""
    merchant, mpp = PARTIES["merchant"], PARTIES["mpp"]
    now = int(time.time() * 1000)
    payment_id = secrets.token_bytes(16)
    body = (payment_id + h(merchant["party_id"]) + b"\x01"
            + struct.pack(">QQ", now, now + REQUEST_LIFETIME_DEFAULT_MS))
    signature = signing_key(merchant).sign(SEMOPS_TAGS["merchant-decision"] + body).signature
    frame = seal(merchant, mpp, KIND_MERCHANT_DECISION, body + signature, now,
                 secrets.randbits(64), payment_id)
    return frame, payment_id, signature


def test_mpay_opens_a_semops_frame_sealed_here(tmp_path):
    frame, payment_id, signature = fresh_decision()
    out = mpay_open(tmp_path, frame, receiver="mpp", sender="merchant")
    assert out.returncode == 0, out.stderr
    opened = json.loads(out.stdout)
    assert opened["header"]["kind_name"] == "MERCHANT_DECISION"
    decision = opened["payload"]["decoded"]
    assert decision["decision"] == "Approve"
    assert decision["payment_id"] == payment_id.hex()
    assert decision["signer"] == PARTIES["merchant"]["party_id"]
    assert decision["signature"] == signature.hex()


@pytest.mark.parametrize("byte", [3, 40, 75, 120, -1])
def test_mpay_refuses_a_bit_flipped_semops_frame_sealed_here(tmp_path, byte):
    frame = bytearray(fresh_decision()[0])
    frame[byte] ^= 1
    out = mpay_open(tmp_path, bytes(frame), receiver="mpp", sender="merchant")
    assert out.returncode == 2, out.stdout
    assert out.stderr.startswith("refused: "), out.stderr
