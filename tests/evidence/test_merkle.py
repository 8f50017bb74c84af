"""The transparency log's Merkle tree: RFC 6962 hashing, RFC 9162 verification, a durable log."""

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence.errors import EvidenceError
from evidence.merkle import (
    EMPTY_ROOT,
    LogFileError,
    MerkleLog,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# RFC 6962 test vectors as published by transparency-dev/merkle: leaf inputs and roots in
# testonly/constants.go, proofs in proof/verify_test.go (there with 1-based leaf numbers).
RFC_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
RFC_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
H_96A2 = bytes.fromhex("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
H_5F08 = bytes.fromhex("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e")
H_6B47 = bytes.fromhex("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")
H_BC1A = bytes.fromhex("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")
H_CA85 = bytes.fromhex("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0")
H_D37E = bytes.fromhex("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")
H_FAC5 = bytes.fromhex("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")
H_6E34 = bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
H_0EBC = bytes.fromhex("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a")
H_B086 = bytes.fromhex("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f")

RFC_INCLUSION = [  # (index, tree size, proof)
    (0, 1, []),
    (0, 8, [H_96A2, H_5F08, H_6B47]),
    (5, 8, [H_BC1A, H_CA85, H_D37E]),
    (2, 3, [H_FAC5]),
    (1, 5, [H_6E34, H_5F08, H_BC1A]),
]
RFC_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, [H_96A2, H_5F08, H_6B47]),
    (6, 8, [H_0EBC, H_CA85, H_D37E]),
    (2, 5, [H_5F08, H_BC1A]),
    (6, 7, [H_0EBC, H_B086, H_D37E]),
]


# An independent reference: RFC 6962 §2.1 transcribed literally, on list slices.
def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = ref_split(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = ref_split(len(d))
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(d)) else ref_subproof(m, d, True)


def ref_shape(m: int, n: int) -> list[bool]:
    """Leaf-up: at each level of leaf m's path in a tree of n leaves, whether the sibling is on the right."""
    if n == 1:
        return []
    k = ref_split(n)
    return [*ref_shape(m, k), True] if m < k else [*ref_shape(m - k, n - k), False]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def log_of(n: int) -> MerkleLog:
    log = MerkleLog()
    log.append_many(i.to_bytes(4, "big") for i in range(n))
    return log


def flip_bit(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    h = bytearray(proof[i])
    h[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:i], bytes(h), *proof[i + 1 :]]


# --- RFC 6962 hashing, against the published vectors ---------------------------------


def test_the_empty_tree_hashes_to_sha256_of_nothing():
    assert root_of([]) == EMPTY_ROOT == RFC_ROOTS[0]
    assert MerkleLog().root() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_published_rfc6962_vectors(size):
    hashes = [leaf_hash(x) for x in RFC_LEAVES[:size]]
    assert root_of(hashes) == RFC_ROOTS[size]
    log = MerkleLog()
    log.append_many(RFC_LEAVES)
    assert log.root(size) == RFC_ROOTS[size]


def test_leaf_and_node_hashes_carry_the_domain_separation_prefixes():
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


@pytest.mark.parametrize(("index", "size", "proof"), RFC_INCLUSION)
def test_inclusion_proofs_match_the_published_vectors_and_verify(index, size, proof):
    log = MerkleLog()
    log.append_many(RFC_LEAVES)
    assert log.inclusion_proof(index, size) == proof
    assert inclusion_proof(index, [leaf_hash(x) for x in RFC_LEAVES[:size]]) == proof
    assert verify_inclusion(leaf_hash(RFC_LEAVES[index]), index, size, proof, RFC_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), RFC_CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors_and_verify(old, new, proof):
    log = MerkleLog()
    log.append_many(RFC_LEAVES)
    assert log.consistency_proof(old, new) == proof
    assert consistency_proof(old, new, [leaf_hash(x) for x in RFC_LEAVES]) == proof
    assert verify_consistency(old, new, RFC_ROOTS[old], RFC_ROOTS[new], proof)


# --- Properties against the reference ------------------------------------------------


@st.composite
def size_and_index(draw):
    n = draw(st.integers(1, 300))
    return n, draw(st.integers(0, n - 1))


@st.composite
def two_sizes(draw):
    n = draw(st.integers(1, 300))
    return draw(st.integers(0, n)), n


@settings(max_examples=150, deadline=None)
@given(size_and_index())
def test_log_inclusion_proofs_equal_the_reference_and_verify(case):
    n, i = case
    d = leaves(n)
    log = log_of(n + 7)  # proofs for a past size, not only the current one
    proof = log.inclusion_proof(i, n)
    assert proof == ref_path(i, d) == inclusion_proof(i, d)
    assert log.root(n) == ref_mth(d) == root_of(d)
    assert verify_inclusion(d[i], i, n, proof, ref_mth(d))


@settings(max_examples=150, deadline=None)
@given(two_sizes())
def test_log_consistency_proofs_equal_the_reference_and_verify(case):
    m, n = case
    d = leaves(n)
    log = log_of(n + 3)
    proof = log.consistency_proof(m, n)
    assert proof == ref_proof(m, d) == consistency_proof(m, n, d)
    assert verify_consistency(m, n, ref_mth(d[:m]), ref_mth(d), proof)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=60))
def test_appending_one_by_one_or_in_a_batch_gives_the_same_tree(entries):
    one_by_one, batch = MerkleLog(), MerkleLog()
    indices = [one_by_one.append(e) for e in entries]
    assert indices == list(batch.append_many(entries)) == list(range(len(entries)))
    assert one_by_one.root() == batch.root() == ref_mth([leaf_hash(e) for e in entries])


# --- Mutations: a tampered proof or claim does not verify ----------------------------


@settings(max_examples=40, deadline=None)
@given(size_and_index())
def test_a_tampered_inclusion_proof_does_not_verify(case):
    n, i = case
    d = leaves(n)
    root, proof = ref_mth(d), ref_path(i, d)
    for j in range(len(proof)):
        for bit in range(256):
            assert not verify_inclusion(d[i], i, n, flip_bit(proof, j, bit), root)
    if proof:
        assert not verify_inclusion(d[i], i, n, proof[:-1], root)
        assert not verify_inclusion(d[i], i, n, proof[1:], root)
    assert not verify_inclusion(d[i], i, n, [*proof, root], root)
    assert not verify_inclusion(d[i], i, n, [root, *proof], root)
    assert not verify_inclusion(d[i], i, n, [*proof, b""], root)
    assert not verify_inclusion(d[i], i, n, proof, hashlib.sha256(b"another root").digest())
    assert not verify_inclusion(d[i], i, n, proof, EMPTY_ROOT)
    assert not verify_inclusion(leaf_hash(b"another entry"), i, n, proof, root)


@settings(max_examples=40, deadline=None)
@given(size_and_index())
def test_an_inclusion_proof_does_not_verify_for_another_index(case):
    n, i = case
    d = leaves(n)
    root, proof = ref_mth(d), ref_path(i, d)
    for wrong in range(n + 2):
        if wrong != i:
            assert not verify_inclusion(d[i], wrong, n, proof, root)


@settings(max_examples=40, deadline=None)
@given(size_and_index())
def test_an_inclusion_proof_verifies_for_another_size_only_where_the_path_has_the_same_shape(case):
    """The proof binds leaf and root, not the size: the size comes signed with the root in a checkpoint.

    For leaf 0 a tree of 5 and one of 6 leaves have the same path shape (three right
    siblings), so no verifier can tell them apart from the proof; every other wrong size fails.
    """
    n, i = case
    d = leaves(n)
    root, proof = ref_mth(d), ref_path(i, d)
    for wrong in range(i + 1, 2 * n + 2):
        if wrong != n:
            same_shape = ref_shape(i, wrong) == ref_shape(i, n)
            assert verify_inclusion(d[i], i, wrong, proof, root) == same_shape


def test_the_size_ambiguity_is_real_and_narrow():
    d = leaves(5)
    proof = ref_path(0, d)
    assert verify_inclusion(d[0], 0, 6, proof, ref_mth(d))
    assert not verify_inclusion(d[0], 0, 10, proof, ref_mth(d))
    assert not verify_inclusion(d[0], 0, 2, proof, ref_mth(d))


@settings(max_examples=40, deadline=None)
@given(two_sizes())
def test_a_tampered_consistency_proof_does_not_verify(case):
    m, n = case
    d = leaves(n)
    old, new, proof = ref_mth(d[:m]), ref_mth(d), ref_proof(m, d)
    other = hashlib.sha256(b"another root").digest()
    for j in range(len(proof)):
        for bit in range(256):
            assert not verify_consistency(m, n, old, new, flip_bit(proof, j, bit))
    if proof:
        assert not verify_consistency(m, n, old, new, proof[:-1])
        assert not verify_consistency(m, n, old, new, proof[1:])
        assert not verify_consistency(m, n, old, new, [proof[0], *proof])
    for extra in (old, new, other):
        assert not verify_consistency(m, n, old, new, [*proof, extra])
        assert not verify_consistency(m, n, old, new, [extra, *proof])
    if m > 0:  # every tree extends the empty one, whatever its root
        assert not verify_consistency(m, n, old, other, proof)
        assert not verify_consistency(m, n, other, new, proof)
    if old != new:
        assert not verify_consistency(m, n, new, old, proof)


@settings(max_examples=40, deadline=None)
@given(two_sizes())
def test_a_consistency_proof_does_not_verify_for_sizes_whose_proof_has_another_length(case):
    """As with inclusion, sizes are bound by the signed checkpoint; sizes whose proof has another length fail."""
    m, n = case
    d = leaves(n)
    old, new, proof = ref_mth(d[:m]), ref_mth(d), ref_proof(m, d)
    for wrong_m, wrong_n in [(m - 1, n), (m + 1, n), (m, n + 1), (m, n - 1), (m, 2 * n), (m, n // 2)]:
        plausible = 0 <= wrong_m <= wrong_n and (wrong_m, wrong_n) != (m, n)
        if plausible and len(ref_proof(wrong_m, leaves(wrong_n))) != len(proof):
            assert not verify_consistency(wrong_m, wrong_n, old, new, proof)
    if m > n // 2:
        assert not verify_consistency(m, n // 2, old, new, proof)


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "valid"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 5, EMPTY_ROOT, RFC_ROOTS[5], [], True),
        (0, 5, RFC_ROOTS[1], RFC_ROOTS[5], [], False),
        (0, 5, EMPTY_ROOT, RFC_ROOTS[5], [EMPTY_ROOT], False),
        (3, 3, RFC_ROOTS[3], RFC_ROOTS[3], [], True),
        (3, 3, RFC_ROOTS[3], RFC_ROOTS[4], [], False),
        (3, 3, RFC_ROOTS[3], RFC_ROOTS[3], [EMPTY_ROOT], False),
        (1, 2, RFC_ROOTS[1], RFC_ROOTS[2], [], False),
        (5, 3, RFC_ROOTS[5], RFC_ROOTS[3], [], False),
    ],
)
def test_consistency_edge_cases(old, new, old_root, new_root, proof, valid):
    assert verify_consistency(old, new, old_root, new_root, proof) is valid


# --- Malformed calls -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: verify_inclusion(b"short", 0, 1, [], EMPTY_ROOT), "leaf_hash must be a 32-byte"),
        (lambda: verify_inclusion(EMPTY_ROOT, 0, 1, [], b""), "root must be a 32-byte"),
        (lambda: verify_inclusion(EMPTY_ROOT, -1, 1, [], EMPTY_ROOT), "index must be >= 0, got -1"),
        (lambda: verify_inclusion(EMPTY_ROOT, 0, -2, [], EMPTY_ROOT), "tree_size must be >= 0, got -2"),
        (lambda: verify_consistency(-1, 2, EMPTY_ROOT, EMPTY_ROOT, []), "old_size must be >= 0"),
        (lambda: verify_consistency(1, 2, EMPTY_ROOT, b"x" * 31, []), "new_root must be a 32-byte"),
        (lambda: root_of([EMPTY_ROOT, b"x"]), r"leaf_hashes\[1\] must be a 32-byte SHA-256 digest, got 1 bytes"),
        (lambda: inclusion_proof(3, leaves(3)), r"index must be in \[0, 3\) for a tree of 3 leaves, got 3"),
        (lambda: consistency_proof(4, 3, leaves(3)), "old_size must be at most new_size 3, got 4"),
        (lambda: consistency_proof(1, 4, leaves(3)), "new_size must be at most 3, the leaves available, got 4"),
        (lambda: log_of(3).root(4), "size must be at most the log size 3, got 4"),
        (lambda: log_of(3).inclusion_proof(0, 0), r"index must be in \[0, 0\)"),
        (lambda: log_of(3).consistency_proof(2, 1), "old_size must be at most new_size 1, got 2"),
        (lambda: log_of(3).leaf_hash(-1), r"index must be in \[0, 3\)"),
    ],
)
def test_malformed_calls_raise_value_errors_saying_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_an_index_past_the_tree_is_a_failed_verification_not_an_error():
    assert not verify_inclusion(EMPTY_ROOT, 1, 1, [], EMPTY_ROOT)
    assert not verify_inclusion(EMPTY_ROOT, 0, 0, [], EMPTY_ROOT)


# --- Durability ----------------------------------------------------------------------


def test_a_reopened_log_has_the_same_size_and_root_and_keeps_appending(tmp_path):
    path = tmp_path / "log.bin"
    with MerkleLog(path) as log:
        assert [log.append(e) for e in RFC_LEAVES[:5]] == [0, 1, 2, 3, 4]
        root5 = log.root()
    assert path.stat().st_size == 5 * 32
    with MerkleLog(path) as log:
        assert (log.size, log.root()) == (5, root5)
        assert log.append_many(RFC_LEAVES[5:]) == range(5, 8)
        assert log.root() == RFC_ROOTS[8]
        assert verify_consistency(5, 8, root5, log.root(), log.consistency_proof(5))
    with MerkleLog(path) as log:
        assert (log.size, log.root(), log.leaf_hash(7)) == (8, RFC_ROOTS[8], leaf_hash(RFC_LEAVES[7]))


def test_a_log_cut_mid_record_is_an_error_naming_the_file_and_offset(tmp_path):
    path = tmp_path / "log.bin"
    with MerkleLog(path) as log:
        log.append_many(RFC_LEAVES[:3])
    with path.open("r+b") as f:
        f.truncate(3 * 32 - 5)
    expected = re.escape(str(path)) + r": truncated record at byte offset 64: 27 of 32 bytes"
    with pytest.raises(LogFileError, match=expected) as e:
        MerkleLog(path)
    assert isinstance(e.value, EvidenceError)
    assert path.stat().st_size == 3 * 32 - 5, "the damaged log is left as found"


def test_appending_to_a_closed_log_is_an_error(tmp_path):
    log = MerkleLog(tmp_path / "log.bin")
    log.append(b"a")
    log.close()
    with pytest.raises(LogFileError, match="closed"):
        log.append(b"b")
    assert log.size == 1


def test_an_unreadable_log_path_keeps_the_cause(tmp_path):
    with pytest.raises(LogFileError) as e:
        MerkleLog(tmp_path)  # a directory, not a file
    assert isinstance(e.value.__cause__, OSError)
