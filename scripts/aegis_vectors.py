# Independent AEGIS-128L and AEGIS-128X4 (draft-irtf-cfrg-aegis-aead) in plain Python, for the
# golden vectors of src/core/crypto/tests.rs: checks itself against the draft's test vectors
# (AEGIS-128L's 1, AEGIS-128X4's 2), then prints, for markers 0x83 and 0x84, the subkey and the
# sealed GetPeers and frame. Run: python3 scripts/aegis_vectors.py
import hmac, hashlib
def xt(a): return ((a << 1) ^ 0x1b) & 0xff if a & 0x80 else a << 1
# AES S-box
sbox = [0]*256
p = q = 1
while True:
    p = p ^ ((p << 1) & 0xff) ^ (0x1b if p & 0x80 else 0)
    q ^= q << 1; q ^= q << 2; q ^= q << 4; q &= 0xff
    if q & 0x80: q ^= 0x09
    x = q ^ ((q << 1 | q >> 7) & 0xff) ^ ((q << 2 | q >> 6) & 0xff) ^ ((q << 3 | q >> 5) & 0xff) ^ ((q << 4 | q >> 4) & 0xff)
    sbox[p] = x ^ 0x63
    if p == 1: break
sbox[0] = 0x63
def aesround(s, k):
    s = [sbox[b] for b in s]
    s = [s[(i + 4*(i % 4)) % 16] for i in range(16)]  # ShiftRows (column-major)
    o = []
    for c in range(4):
        a = s[4*c:4*c+4]
        o += [xt(a[0]) ^ xt(a[1]) ^ a[1] ^ a[2] ^ a[3],
              a[0] ^ xt(a[1]) ^ xt(a[2]) ^ a[2] ^ a[3],
              a[0] ^ a[1] ^ xt(a[2]) ^ xt(a[3]) ^ a[3],
              xt(a[0]) ^ a[0] ^ a[1] ^ a[2] ^ xt(a[3])]
    return bytes(x ^ y for x, y in zip(o, k))
def X(a, b): return bytes(x ^ y for x, y in zip(a, b))
def A(a, b): return bytes(x & y for x, y in zip(a, b))
C0 = bytes.fromhex("000101020305080d1522375990e97962")
C1 = bytes.fromhex("db3d18556dc22ff12011314273b528dd")
def update(S, M0, M1):
    return [X(aesround(S[7], S[0]), M0), aesround(S[0], S[1]), aesround(S[1], S[2]), aesround(S[2], S[3]),
            X(aesround(S[3], S[4]), M1), aesround(S[4], S[5]), aesround(S[5], S[6]), aesround(S[6], S[7])]
def init(k, n):
    S = [X(k, n), C1, C0, C1, X(k, n), X(k, C0), X(k, C1), X(k, C0)]
    for _ in range(10): S = update(S, n, k)
    return S
def z(S): return X(X(S[1], S[6]), A(S[2], S[3])), X(X(S[2], S[5]), A(S[6], S[7]))
def enc(k, n, ad, m):
    S = init(k, n)
    adp = ad + bytes(-len(ad) % 32)
    for i in range(0, len(adp), 32): S = update(S, adp[i:i+16], adp[i+16:i+32])
    c = b""
    mp = m + bytes(-len(m) % 32)
    for i in range(0, len(mp), 32):
        z0, z1 = z(S); t0, t1 = mp[i:i+16], mp[i+16:i+32]
        c += X(t0, z0) + X(t1, z1); S = update(S, t0, t1)
    c = c[:len(m)]
    t = X(S[2], ((len(ad)*8).to_bytes(8, "little") + (len(m)*8).to_bytes(8, "little")))
    for _ in range(7): S = update(S, t, t)
    tag = S[0]
    for i in range(1, 7): tag = X(tag, S[i])
    return c, tag
# AEGIS-128X4: four AEGIS-128L states (lanes). A 128-byte block is two 64-byte halves, and lane
# i takes bytes 16i..16i+16 of each; the initialisation mixes a context block (lane index,
# lanes - 1) into V3 and V7 of each lane.
D = 4
def enc_x(k, n, ad, m):
    S = [[X(k, n), C1, C0, C1, X(k, n), X(k, C0), X(k, C1), X(k, C0)] for _ in range(D)]
    ctx = [bytes([i, D - 1]) + bytes(14) for i in range(D)]
    for _ in range(10):
        for i in range(D):
            S[i][3] = X(S[i][3], ctx[i]); S[i][7] = X(S[i][7], ctx[i])
        S = [update(S[i], n, k) for i in range(D)]
    rate = 32 * D
    def half0(blk, i): return blk[16*i:16*i+16]
    def half1(blk, i): return blk[16*D+16*i:16*D+16*i+16]
    def absorb(S, blk): return [update(S[i], half0(blk, i), half1(blk, i)) for i in range(D)]
    adp = ad + bytes(-len(ad) % rate)
    for j in range(0, len(adp), rate): S = absorb(S, adp[j:j+rate])
    c = b""
    mp = m + bytes(-len(m) % rate)
    for j in range(0, len(mp), rate):
        blk = mp[j:j+rate]
        zs = [z(S[i]) for i in range(D)]
        c += b"".join(X(half0(blk, i), zs[i][0]) for i in range(D))
        c += b"".join(X(half1(blk, i), zs[i][1]) for i in range(D))
        S = absorb(S, blk)
    c = c[:len(m)]
    lens = (len(ad)*8).to_bytes(8, "little") + (len(m)*8).to_bytes(8, "little")
    t = [X(S[i][2], lens) for i in range(D)]
    for _ in range(7):
        S = [update(S[i], t[i], t[i]) for i in range(D)]
    tag = bytes(16)
    for i in range(D):
        for j in range(7): tag = X(tag, S[i][j])
    return c, tag
c, t = enc_x(bytes.fromhex("000102030405060708090a0b0c0d0e0f"), bytes.fromhex("101112131415161718191a1b1c1d1e1f"),
             bytes.fromhex("0102030401020304"), bytes.fromhex("04050607" * 30))
assert c.hex() == ("e836118562f4479c9d35c17356a833114c21f9aa39e4dda5e5c87f4152a00fce9a7c38f832eafe8b1c12f8a7cf12a81a"
                   "1ad8a9c24ba9dedfbdaa586ffea67ddc801ea97d9ab4a872f42d0e352e2713dacd609f9442c17517c5a29daf3e2a3fac"
                   "4ff6b1380c4e46df7b086af6ce6bc1ed594b8dd64aed2a7e"), c.hex()
assert t.hex() == "0e56ab94e2e85db80f9d54010caabfb4", t.hex()
c, t = enc(bytes.fromhex("10010000000000000000000000000000"), bytes.fromhex("10000200000000000000000000000000"), b"", bytes(16))
assert c.hex() == "c1c0e58bd913006feba00f4b3cc3594e", c.hex()
assert t.hex() == "abe0ece80c24868a226a35d16bdae37a", t.hex()
# ethcloud golden vectors
key = bytes(range(32))
session = bytes.fromhex("000001954ef62c00a1b2c3d4e5f60718")
prk = hmac.new(b"ethcloud-session-v1", key, hashlib.sha256).digest()
token = (134).to_bytes(7, "big")
frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x88\xb5ethcloud"
for marker, cipher in [(b"\x83", enc), (b"\x84", enc_x)]:
    sub = hmac.new(prk, session + marker + b"\x01", hashlib.sha256).digest()[:16]
    print("marker", marker.hex(), "subkey", sub.hex())
    aad = token + marker
    for ctr, inner in [(0, b"\x02"), (1, b"\x00" + frame)]:
        n = bytes(8) + ctr.to_bytes(8, "big")
        c, t = cipher(sub, n, aad, inner)
        print(aad.hex(), session.hex(), ctr.to_bytes(8, "big").hex(), c.hex(), t.hex())
