# Independent AEGIS-128L (draft-irtf-cfrg-aegis-aead) in plain Python, for the golden vectors
# of src/core/crypto/tests.rs: checks itself against the draft's test vector 1, then prints the
# subkey and the sealed GetPeers and frame of marker 0x83. Run: python3 scripts/aegis_vectors.py
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
c, t = enc(bytes.fromhex("10010000000000000000000000000000"), bytes.fromhex("10000200000000000000000000000000"), b"", bytes(16))
assert c.hex() == "c1c0e58bd913006feba00f4b3cc3594e", c.hex()
assert t.hex() == "abe0ece80c24868a226a35d16bdae37a", t.hex()
# ethcloud golden vectors
key = bytes(range(32))
session = bytes.fromhex("000001954ef62c00a1b2c3d4e5f60718")
prk = hmac.new(b"ethcloud-session-v1", key, hashlib.sha256).digest()
sub = hmac.new(prk, session + b"\x83" + b"\x01", hashlib.sha256).digest()[:16]
print("subkey", sub.hex())
token = (134).to_bytes(7, "big")
aad = token + b"\x83"
frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x88\xb5ethcloud"
for ctr, inner in [(0, b"\x02"), (1, b"\x00" + frame)]:
    n = bytes(8) + ctr.to_bytes(8, "big")
    c, t = enc(sub, n, aad, inner)
    print(aad.hex(), session.hex(), ctr.to_bytes(8, "big").hex(), c.hex(), t.hex())
