"""Merkle log benchmark: inclusion proofs in a 1,000,000-leaf log must take under 10 ms.

Builds a `MerkleLog` of 1,000,000 leaves in memory, then times, for 1,000 random leaf
indices, generating the inclusion proof and verifying it against the root (medians and
p99). Append throughput is measured three ways: in memory with `append_many`, to a file
with `append_many` in batches of 1,000 (one fsync per batch), and to a file with
`append` (one fsync per leaf). A naive baseline recomputes each proof from the leaf
hashes by the recursive RFC 6962 definition (`evidence.merkle.inclusion_proof`), on
logs of 1,000 and 10,000 leaves, to show how that scales against the log's O(log n).

    .venv/bin/python benchmarks/bench_merkle.py [--leaves N] [--queries Q]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from evidence.merkle import MerkleLog, inclusion_proof, leaf_hash, verify_inclusion


def entries(n: int, offset: int = 0) -> list[bytes]:
    return [(offset + i).to_bytes(8, "big") for i in range(n)]


def time_proofs(log: MerkleLog, indices: list[int]) -> tuple[list[float], list[float]]:
    root, size = log.root(), log.size
    prove, verify = [], []
    for i in indices:
        t0 = time.perf_counter()
        proof = log.inclusion_proof(i)
        t1 = time.perf_counter()
        ok = verify_inclusion(log.leaf_hash(i), i, size, proof, root)
        t2 = time.perf_counter()
        if not ok:
            raise SystemExit(f"proof for leaf {i} did not verify")
        prove.append(t1 - t0)
        verify.append(t2 - t1)
    return prove, verify


def time_naive(n: int, queries: int, rng: random.Random) -> list[float]:
    hashes = [leaf_hash(e) for e in entries(n)]
    times = []
    for i in (rng.randrange(n) for _ in range(queries)):
        t0 = time.perf_counter()
        inclusion_proof(i, hashes)
        times.append(time.perf_counter() - t0)
    return times


def ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1e3:.4f} ms, p99 {statistics.quantiles(xs, n=100)[98] * 1e3:.4f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    args = parser.parse_args()
    rng = random.Random(0)
    print(f"python {platform.python_version()} on {platform.machine()} ({platform.processor() or 'unknown cpu'})")

    log = MerkleLog()
    t0 = time.perf_counter()
    log.append_many(entries(args.leaves))
    build = time.perf_counter() - t0
    print(f"in-memory append_many of {args.leaves:,} leaves: {build:.2f} s, {args.leaves / build:,.0f} leaves/s")

    indices = [rng.randrange(args.leaves) for _ in range(args.queries)]
    indices[:3] = [0, args.leaves - 1, args.leaves // 2]
    prove, verify = time_proofs(log, indices)
    total = [p + v for p, v in zip(prove, verify, strict=True)]
    print(f"log of {args.leaves:,}: inclusion proof  {ms(prove)}")
    print(f"log of {args.leaves:,}: verification     {ms(verify)}")
    print(f"log of {args.leaves:,}: proof + verify   {ms(total)}  (target < 10 ms)")
    t0 = time.perf_counter()
    log.root(args.leaves - 1)
    print(f"log of {args.leaves:,}: root of a past size: {(time.perf_counter() - t0) * 1e3:.4f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.bin"
        with MerkleLog(path) as file_log:
            batches, batch = 100, 1_000
            t0 = time.perf_counter()
            for b in range(batches):
                file_log.append_many(entries(batch, b * batch))
            took = time.perf_counter() - t0
            print(f"file append_many, {batch:,} per fsync: {batches * batch / took:,.0f} leaves/s")
            singles = 500
            t0 = time.perf_counter()
            for e in entries(singles, batches * batch):
                file_log.append(e)
            took = time.perf_counter() - t0
            print(f"file append, one fsync each: {singles / took:,.0f} leaves/s ({took / singles * 1e3:.3f} ms each)")
        t0 = time.perf_counter()
        reopened = MerkleLog(path)
        print(f"reopen {reopened.size:,} leaves from file: {time.perf_counter() - t0:.3f} s")
        reopened.close()

    for n in (1_000, 10_000):
        print(f"naive baseline, recursive PATH over {n:,} leaf hashes: {ms(time_naive(n, 200, rng))}")
        small = MerkleLog()
        small.append_many(entries(n))
        prove_small, _ = time_proofs(small, [rng.randrange(n) for _ in range(200)])
        print(f"log of {n:,} for comparison: inclusion proof {ms(prove_small)}")


if __name__ == "__main__":
    main()
