"""Verifiable "double random, one public" inspection draws (双随机、一公开).

Market-supervision inspections draw their targets at random from the premises registry
(optionally stratified by risk grade and street), draw at least two inspectors per target
from the expert pool, excluding conflicts, and publish the list and the results. nonsite
makes the draw reproducible and checkable by anyone:

1. `new_seed()` makes a secret seed; `commit_to_log` appends its SHA-256 (`commit(seed)`),
   the digest of the inputs (`inputs_digest`) and, optionally, the name of a public beacon
   that is not yet known, to the evidence Merkle log, before anything is drawn.
2. `draw` computes the draw from the seed alone, deterministically.
3. `publish_to_log` appends the public document (`to_public`), which reveals the seed, the
   inputs and the result; `verify` recomputes it from the document alone and
   `verify_against_log` also checks that the commitment came first and matches.

The commitment stops a re-draw after it is logged (a second commitment for the same
purpose is visible in the log). It cannot stop an agency that draws privately with many
seeds before committing one; naming a beacon (a public random value published after the
commitment, such as a lottery draw's numbers) in the commitment closes that gap, because
the draw then depends on a value nobody knew when the seed was fixed.

Draw algorithm `nonsite.draw/1` (everything an outside auditor needs to reimplement it):

- Key. `key = seed` (at least 16 bytes). With a beacon,
  `key = HMAC-SHA256(seed, UTF-8("nonsite.draw/1/beacon") || 0x00 || UTF-8(beacon))`.
- Streams. A stream with label L is the byte string
  `HMAC-SHA256(key, UTF-8(L) || 0x00 || uint64be(0)) || HMAC-SHA256(key, ... uint64be(1)) || ...`,
  read as consecutive 8-byte big-endian unsigned words. Three kinds of stream are used:
  `nonsite.draw/1/targets/<stratum label>`, `nonsite.draw/1/order` and
  `nonsite.draw/1/inspectors`.
- below(n), a uniform integer in [0, n): read a word x; if `x >= 2**64 - (2**64 mod n)`
  read another (rejection, so there is no modulo bias); return `x mod n`.
- sample(items, k): `a = list(items)`; for i = 0 .. k-1: `j = i + below(len(a) - i)`,
  swap `a[i]` and `a[j]`; return `a[:k]` (a partial Fisher-Yates shuffle; a full shuffle is
  `sample(items, len(items))`, whose last step reads one word and always returns 0).
- Canonical order. Candidates are sorted by premises id, inspectors by id (Unicode code
  point order, which is also UTF-8 byte order), so the caller's order does not matter.
- Strata. A candidate's stratum is the tuple of its `stratify_by` fields; its label is
  `field=value` joined by `,` in `stratify_by` order (`grade=A,street=文化街道`), or `all`
  without stratification. Strata are ordered by that tuple.
- Allocation. A dict of targets gives each stratum's count (a stratum it leaves out draws
  none). An int with stratification is split in proportion to stratum sizes by largest
  remainder: stratum s with n_s of N candidates gets `floor(T*n_s/N)`, and the seats left
  go one each to the strata with the largest `T*n_s mod N`, ties to the earlier stratum.
- Targets. For each stratum in order with k > 0: `sample(stratum's candidates, k)` on the
  stream `targets/<its label>`. The drawn targets are then sorted by premises id.
- Assignment order. `sample(targets, len(targets))` on the stream `order`, then stably
  sorted by how many inspectors have no conflict with the target (fewest first), so that
  the hardest targets are staffed before the load limit bites.
- Inspectors. A conflict excludes an inspector whose street is the target's street, or
  whose `recent_premises` holds the target. For each target in assignment order, the
  eligible inspectors are those without a conflict and below `max_targets_per_inspector`
  targets so far, in id order. Fewer than `inspectors_per_target` of them: the target is
  reported as unassigned with the reason, and nothing is read from the stream. Otherwise
  `sample(eligible, inspectors_per_target)` on the stream `inspectors` (one stream for all
  targets, read on from target to target) staffs it, listed in id order.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from cases.errors import CaseError
from evidence.canonical import CanonicalJSONError, canonical_json, canonical_sha256
from evidence.vault import Vault

logger = logging.getLogger(__name__)

ALGORITHM = "nonsite.draw/1"
COMMITMENT_RECORD = "inspection.draw.commitment"
PUBLISHED_RECORD = "inspection.draw.published"
STRATUM_FIELDS = ("grade", "street")
MIN_INSPECTORS_PER_TARGET = 2  # an inspection is carried out by at least two inspectors
MIN_SEED_BYTES = 16
SEED_BYTES = 32
UNSTRATIFIED = "all"

_WORD_RANGE = 1 << 64
_T = TypeVar("_T")


class DrawError(CaseError, ValueError):
    """A draw that cannot be made or logged as asked; the message says what to change."""


def _check_name(value: object, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise DrawError(f"{what} must be a non-empty string, but got {value!r}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One premises that may be drawn: its registry id, the street (街道) that manages it, its risk grade."""

    premises_id: str
    street: str
    grade: str

    def __post_init__(self) -> None:
        _check_name(self.premises_id, "premises_id")
        _check_name(self.street, f"street of premises {self.premises_id}")
        _check_name(self.grade, f"grade of premises {self.premises_id} (use a name such as 'ungraded' for none)")

    def to_json(self) -> dict[str, str]:
        return {"premises_id": self.premises_id, "street": self.street, "grade": self.grade}


@dataclass(frozen=True, slots=True)
class Inspector:
    """One member of the expert pool.

    `street` is the street the inspector works for (they may not inspect premises there);
    `recent_premises` holds the premises they inspected within the exclusion window (say the
    last 365 days before the draw), which the caller works out from its inspection records.
    """

    id: str
    name: str
    street: str
    recent_premises: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _check_name(self.id, "inspector id")
        _check_name(self.name, f"name of inspector {self.id}")
        _check_name(self.street, f"street of inspector {self.id}")
        if not isinstance(self.recent_premises, frozenset) or not all(isinstance(p, str) for p in self.recent_premises):
            raise DrawError(
                f"recent_premises of inspector {self.id} must be a frozenset of premises ids, "
                f"but got {type(self.recent_premises).__name__}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "street": self.street,
            "recent_premises": sorted(self.recent_premises),
        }


@dataclass(frozen=True, slots=True)
class DrawSpec:
    """What to draw.

    `targets`: how many premises in all (split in proportion to stratum sizes when
    stratified), or a count per stratum label (`{"grade=A": 5, "grade=B": 3}`; see
    `strata`). `stratify_by`: fields of `Candidate` that make the strata, from "grade" and
    "street". `max_targets_per_inspector`: the most targets one inspector may get, or None.
    """

    targets: int | Mapping[str, int]
    stratify_by: tuple[str, ...] = ()
    inspectors_per_target: int = MIN_INSPECTORS_PER_TARGET
    max_targets_per_inspector: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stratify_by, tuple) or any(f not in STRATUM_FIELDS for f in self.stratify_by):
            raise DrawError(
                f"stratify_by must be a tuple of fields from {STRATUM_FIELDS}, but got {self.stratify_by!r}"
            )
        if len(set(self.stratify_by)) != len(self.stratify_by):
            raise DrawError(f"stratify_by names a field twice: {self.stratify_by!r}")
        if isinstance(self.targets, Mapping):
            if not self.stratify_by:
                raise DrawError(
                    "targets per stratum need stratify_by (say ('grade',)); "
                    "without strata give the number of targets as an int"
                )
            for label, count in self.targets.items():
                if not isinstance(label, str) or not _is_count(count) or count < 0:
                    raise DrawError(f"targets per stratum must map labels to counts >= 0, but got {label!r}: {count!r}")
            if sum(self.targets.values()) < 1:
                raise DrawError(f"targets per stratum ask for no targets at all: {dict(self.targets)}")
            # a copy the caller cannot change behind the spec's back
            object.__setattr__(self, "targets", MappingProxyType(dict(self.targets)))
        elif not _is_count(self.targets) or self.targets < 1:
            raise DrawError(f"targets must be a count >= 1 or a count per stratum, but got {self.targets!r}")
        if not _is_count(self.inspectors_per_target) or self.inspectors_per_target < MIN_INSPECTORS_PER_TARGET:
            raise DrawError(
                f"inspectors_per_target must be at least {MIN_INSPECTORS_PER_TARGET} "
                f"(an inspection needs two inspectors), but got {self.inspectors_per_target!r}"
            )
        limit = self.max_targets_per_inspector
        if limit is not None and (not _is_count(limit) or limit < 1):
            raise DrawError(f"max_targets_per_inspector must be None or a count >= 1, but got {limit!r}")

    def to_json(self) -> dict[str, Any]:
        targets = self.targets if isinstance(self.targets, int) else dict(sorted(self.targets.items()))
        return {
            "targets": targets,
            "stratify_by": list(self.stratify_by),
            "inspectors_per_target": self.inspectors_per_target,
            "max_targets_per_inspector": self.max_targets_per_inspector,
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> DrawSpec:
        targets = document["targets"]
        return cls(
            targets=dict(targets) if isinstance(targets, Mapping) else targets,
            stratify_by=tuple(document["stratify_by"]),
            inspectors_per_target=document["inspectors_per_target"],
            max_targets_per_inspector=document["max_targets_per_inspector"],
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class DrawResult:
    """A draw and everything it was drawn from; `to_public` turns it into the published document."""

    spec: DrawSpec
    seed: str  # hex
    commitment: str  # hex SHA-256 of the seed
    beacon: str | None
    candidates: tuple[Candidate, ...]  # by premises id
    pool: tuple[Inspector, ...]  # by id
    allocation: Mapping[str, int]  # stratum label -> targets drawn there
    assignments: tuple[tuple[str, tuple[str, ...]], ...]  # (premises id, inspector ids), by premises id
    unassigned: tuple[tuple[str, str], ...]  # (premises id, why no inspectors could be found), by premises id

    @property
    def targets(self) -> tuple[str, ...]:
        """Every drawn premises, staffed or not, by id."""
        return tuple(sorted([p for p, _ in self.assignments] + [p for p, _ in self.unassigned]))


class RandomStream:
    """The deterministic stream `nonsite.draw/1` draws from (see the module docstring)."""

    def __init__(self, key: bytes, label: str) -> None:
        self._key = key
        self._prefix = label.encode() + b"\x00"
        self._counter = 0
        self._buffer = b""

    def word(self) -> int:
        """The next 8 bytes of the stream as a big-endian unsigned integer."""
        if not self._buffer:
            block = self._prefix + self._counter.to_bytes(8, "big")
            self._buffer = hmac.new(self._key, block, hashlib.sha256).digest()
            self._counter += 1
        word, self._buffer = self._buffer[:8], self._buffer[8:]
        return int.from_bytes(word, "big")

    def below(self, n: int) -> int:
        """A uniform integer in [0, n), by rejection so that no value is favoured."""
        if n < 1:
            raise ValueError(f"below(n) needs n >= 1, but got {n}")
        limit = _WORD_RANGE - _WORD_RANGE % n
        while True:
            x = self.word()
            if x < limit:
                return x % n

    def sample(self, items: Sequence[_T], k: int) -> list[_T]:
        """k items chosen uniformly without replacement, in draw order (partial Fisher-Yates)."""
        if not 0 <= k <= len(items):
            raise ValueError(f"cannot sample {k} of {len(items)} items")
        a = list(items)
        for i in range(k):
            j = i + self.below(len(a) - i)
            a[i], a[j] = a[j], a[i]
        return a[:k]


def new_seed() -> bytes:
    """A fresh secret seed from the operating system's cryptographic random source."""
    return secrets.token_bytes(SEED_BYTES)


def commit(seed: bytes) -> str:
    """The commitment to a seed: its SHA-256, hex. Logged before the draw, it fixes the seed."""
    _check_seed(seed)
    return hashlib.sha256(seed).hexdigest()


def _check_seed(seed: object) -> None:
    if not isinstance(seed, bytes) or len(seed) < MIN_SEED_BYTES:
        got = f"{len(seed)} bytes" if isinstance(seed, bytes) else type(seed).__name__
        raise DrawError(f"a seed must be at least {MIN_SEED_BYTES} random bytes (use new_seed()), but got {got}")


def _key(seed: bytes, beacon: str | None) -> bytes:
    if beacon is None:
        return seed
    return hmac.new(seed, f"{ALGORITHM}/beacon".encode() + b"\x00" + beacon.encode(), hashlib.sha256).digest()


def _stratum(candidate: Candidate, stratify_by: Sequence[str]) -> tuple[str, ...]:
    return tuple(getattr(candidate, field) for field in stratify_by)


def _label(key: tuple[str, ...], stratify_by: Sequence[str]) -> str:
    return ",".join(f"{field}={value}" for field, value in zip(stratify_by, key, strict=True)) or UNSTRATIFIED


def _group(candidates: Iterable[Candidate], stratify_by: Sequence[str]) -> dict[tuple[str, ...], list[Candidate]]:
    """Candidates by stratum, strata in order, each stratum's candidates by id."""
    groups: dict[tuple[str, ...], list[Candidate]] = {}
    for candidate in sorted(candidates, key=lambda c: c.premises_id):
        key = _stratum(candidate, stratify_by)
        for field, value in zip(stratify_by, key, strict=True):
            if "," in value or "=" in value:
                raise DrawError(
                    f"{field} {value!r} of premises {candidate.premises_id} contains ',' or '=', "
                    "which stratum labels use; rename it before stratifying by it"
                )
        groups.setdefault(key, []).append(candidate)
    return dict(sorted(groups.items()))


def strata(candidates: Iterable[Candidate], stratify_by: Sequence[str]) -> dict[str, int]:
    """Each stratum's label and size, in stratum order: the keys a per-stratum `targets` may use.

    Drawing k from every stratum is `DrawSpec({label: k for label in strata(...)}, stratify_by)`.
    """
    return {_label(key, stratify_by): len(group) for key, group in _group(candidates, stratify_by).items()}


def _allocate(spec: DrawSpec, sizes: Mapping[str, int]) -> dict[str, int]:
    """Targets per stratum label, in stratum order."""
    total = sum(sizes.values())
    if isinstance(spec.targets, Mapping):
        unknown = sorted(set(spec.targets) - set(sizes))
        if unknown:
            raise DrawError(f"no candidates in stratum {', '.join(unknown)}; the strata are {', '.join(sizes)}")
        allocation = {label: spec.targets.get(label, 0) for label in sizes}
    else:
        wanted = spec.targets
        if wanted > total:
            raise DrawError(f"{wanted} targets were asked but there are only {total} candidates")
        allocation = {label: wanted * n // total for label, n in sizes.items()}
        left = wanted - sum(allocation.values())
        # largest remainder; sorted() is stable, so ties go to the earlier stratum
        by_remainder = sorted(sizes, key=lambda label: -(wanted * sizes[label] % total))
        for label in by_remainder[:left]:
            allocation[label] += 1
    for label, count in allocation.items():
        if count > sizes[label]:
            raise DrawError(
                f"stratum {label} has {sizes[label]} candidates but {count} targets were asked; "
                "ask for fewer there or stratify more coarsely"
            )
    return allocation


def conflict(inspector: Inspector, candidate: Candidate) -> str | None:
    """Why the inspector may not inspect the premises, or None when they may."""
    if inspector.street == candidate.street:
        return "same street"
    if candidate.premises_id in inspector.recent_premises:
        return "visited recently"
    return None


def _unassigned_reason(
    candidate: Candidate, pool: Sequence[Inspector], load: Mapping[str, int], spec: DrawSpec, eligible: int
) -> str:
    reasons: Counter[str] = Counter()
    for inspector in pool:
        why = conflict(inspector, candidate)
        limit = spec.max_targets_per_inspector
        if why is None and limit is not None and load[inspector.id] >= limit:
            why = f"at the limit of {limit} targets"
        if why is not None:
            reasons[why] += 1
    excluded = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
    return (
        f"{eligible} of {len(pool)} inspectors eligible but {spec.inspectors_per_target} needed "
        f"(excluded: {excluded or 'none'}); add inspectors from other streets to the pool"
    )


def draw(
    seed: bytes,
    spec: DrawSpec,
    candidates: Iterable[Candidate],
    pool: Iterable[Inspector],
    *,
    beacon: str | None = None,
) -> DrawResult:
    """Draw targets and their inspectors from the seed (and beacon), as `nonsite.draw/1` specifies.

    The same seed, beacon, spec and inputs give the same result in any order of the inputs.
    A target without enough eligible inspectors is kept in `unassigned` with the reason.
    """
    _check_seed(seed)
    if beacon is not None and (not isinstance(beacon, str) or not beacon):
        raise DrawError(f"a beacon must be a non-empty string (the public value, as published), but got {beacon!r}")
    candidates = tuple(sorted(candidates, key=lambda c: c.premises_id))
    pool = tuple(sorted(pool, key=lambda i: i.id))
    for what, ids in (("premises", [c.premises_id for c in candidates]), ("inspector", [i.id for i in pool])):
        twice = sorted(k for k, n in Counter(ids).items() if n > 1)
        if twice:
            raise DrawError(f"{what} ids must be unique, but {', '.join(twice)} appear more than once")
    if not candidates:
        raise DrawError("there are no candidates to draw from; pass the premises registry")
    if len(pool) < spec.inspectors_per_target:
        raise DrawError(
            f"the pool has {len(pool)} inspector{'' if len(pool) == 1 else 's'} "
            f"but {spec.inspectors_per_target} are needed per target; "
            "add inspectors to the pool"
        )

    key = _key(seed, beacon)
    groups = _group(candidates, spec.stratify_by)
    labels = {_label(k, spec.stratify_by): group for k, group in groups.items()}
    allocation = _allocate(spec, {label: len(group) for label, group in labels.items()})
    drawn: list[Candidate] = []
    for label, group in labels.items():
        if allocation[label]:
            drawn += RandomStream(key, f"{ALGORITHM}/targets/{label}").sample(group, allocation[label])
    drawn.sort(key=lambda c: c.premises_id)

    order = RandomStream(key, f"{ALGORITHM}/order").sample(drawn, len(drawn))
    free = {c.premises_id: sum(conflict(i, c) is None for i in pool) for c in order}
    order.sort(key=lambda c: free[c.premises_id])

    stream = RandomStream(key, f"{ALGORITHM}/inspectors")
    load = dict.fromkeys((i.id for i in pool), 0)
    limit = spec.max_targets_per_inspector
    assignments: dict[str, tuple[str, ...]] = {}
    unassigned: dict[str, str] = {}
    for target in order:
        eligible = [i for i in pool if conflict(i, target) is None and (limit is None or load[i.id] < limit)]
        if len(eligible) < spec.inspectors_per_target:
            unassigned[target.premises_id] = _unassigned_reason(target, pool, load, spec, len(eligible))
            logger.info(
                "inspection draw: premises %s unassigned: %s", target.premises_id, unassigned[target.premises_id]
            )
            continue
        chosen = sorted(i.id for i in stream.sample(eligible, spec.inspectors_per_target))
        for inspector_id in chosen:
            load[inspector_id] += 1
        assignments[target.premises_id] = tuple(chosen)

    return DrawResult(
        spec=spec,
        seed=seed.hex(),
        commitment=commit(seed),
        beacon=beacon,
        candidates=candidates,
        pool=pool,
        allocation=MappingProxyType(allocation),
        assignments=tuple(sorted(assignments.items())),
        unassigned=tuple(sorted(unassigned.items())),
    )


def inputs_digest(spec: DrawSpec, candidates: Iterable[Candidate], pool: Iterable[Inspector]) -> str:
    """SHA-256 of the canonical inputs: logged with the commitment, it fixes the registry and pool too.

    Without it an agency that knows its seed could add, drop or re-grade a premises, or
    change the pool, until the draw suits it.
    """
    return canonical_sha256(_inputs_json(spec, candidates, pool))


def _inputs_json(spec: DrawSpec, candidates: Iterable[Candidate], pool: Iterable[Inspector]) -> dict[str, Any]:
    return {
        "algorithm": ALGORITHM,
        "spec": spec.to_json(),
        "candidates": [c.to_json() for c in sorted(candidates, key=lambda c: c.premises_id)],
        "pool": [i.to_json() for i in sorted(pool, key=lambda i: i.id)],
    }


def to_public(result: DrawResult) -> dict[str, Any]:
    """The published document: the seed, the inputs and the result, as canonical-JSON-able data."""
    return {
        **_inputs_json(result.spec, result.candidates, result.pool),
        "seed": result.seed,
        "commitment": result.commitment,
        "beacon": result.beacon,
        "allocation": dict(result.allocation),
        "assignments": [{"premises_id": p, "inspectors": list(ids)} for p, ids in result.assignments],
        "unassigned": [{"premises_id": p, "reason": why} for p, why in result.unassigned],
    }


def _parse(published: Mapping[str, Any]) -> tuple[bytes, str | None, DrawSpec, list[Candidate], list[Inspector]]:
    seed = bytes.fromhex(published["seed"])
    spec = DrawSpec.from_json(published["spec"])
    candidates = [Candidate(c["premises_id"], c["street"], c["grade"]) for c in published["candidates"]]
    pool = [Inspector(i["id"], i["name"], i["street"], frozenset(i["recent_premises"])) for i in published["pool"]]
    return seed, published.get("beacon"), spec, candidates, pool


def verify(published: Mapping[str, Any]) -> list[str]:
    """What is wrong with a published draw (nothing: an empty list), from the document alone.

    Checks that the commitment is the seed's SHA-256 and that recomputing the draw from the
    published seed, beacon, spec and inputs gives the published allocation and assignments.
    """
    if published.get("algorithm") != ALGORITHM:
        return [f"unknown algorithm {published.get('algorithm')!r}; this verifier implements {ALGORITHM}"]
    try:
        seed, beacon, spec, candidates, pool = _parse(published)
        recomputed = to_public(draw(seed, spec, candidates, pool, beacon=beacon))
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # DrawError is a ValueError
        return [f"the document cannot be recomputed: {type(e).__name__}: {e}"]
    problems = []
    if published.get("commitment") != recomputed["commitment"]:
        problems.append(
            f"commitment {published.get('commitment')!r} is not the SHA-256 of the seed ({recomputed['commitment']})"
        )
    if published.get("allocation") != recomputed["allocation"]:
        problems.append(
            f"allocation {published.get('allocation')} differs from the recomputed {recomputed['allocation']}"
        )
    for key, field in (("assignments", "inspectors"), ("unassigned", "reason")):
        try:
            claimed = {entry["premises_id"]: entry[field] for entry in published.get(key, [])}
        except (KeyError, TypeError) as e:
            problems.append(f"{key} is malformed: {e}")
            continue
        actual = {entry["premises_id"]: entry[field] for entry in recomputed[key]}
        for premises_id in sorted(set(claimed) | set(actual)):
            if premises_id not in actual:
                problems.append(f"{key}: {premises_id} is published but not in the recomputed draw")
            elif premises_id not in claimed:
                problems.append(f"{key}: {premises_id} is in the recomputed draw but not published")
            elif claimed[premises_id] != actual[premises_id]:
                problems.append(
                    f"{key}: {premises_id} is published with {claimed[premises_id]!r}, "
                    f"recomputed with {actual[premises_id]!r}"
                )
    return problems


def _iso(at: datetime) -> str:
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise DrawError(f"times must be timezone-aware datetimes (datetime.now(UTC)), but got {at!r}")
    return at.astimezone(UTC).isoformat(timespec="seconds")


def commit_to_log(
    vault: Vault,
    commitment: str,
    *,
    purpose: str,
    at: datetime,
    inputs_sha256: str | None = None,
    beacon_source: str | None = None,
) -> int:
    """Log the commitment before drawing; returns its leaf index, which the publication names.

    `purpose` names the inspection campaign (a re-draw shows as a second commitment for it);
    `inputs_sha256` (`inputs_digest`) fixes the registry and pool; `beacon_source` names the
    public value, not yet known, that the draw will mix in (say "福彩3D draw 2026001").
    """
    if not isinstance(commitment, str) or len(commitment) != 64 or set(commitment) - set("0123456789abcdef"):
        raise DrawError(f"a commitment is 64 lowercase hex digits (commit(seed)), but got {commitment!r}")
    _check_name(purpose, "purpose")
    if inputs_sha256 is not None and (len(inputs_sha256) != 64 or set(inputs_sha256) - set("0123456789abcdef")):
        raise DrawError(f"inputs_sha256 is 64 lowercase hex digits (inputs_digest(...)), but got {inputs_sha256!r}")
    if beacon_source is not None:
        _check_name(beacon_source, "beacon_source")
    record = {
        "type": COMMITMENT_RECORD,
        "algorithm": ALGORITHM,
        "commitment": commitment,
        "purpose": purpose,
        "at": _iso(at),
        "inputs_sha256": inputs_sha256,
        "beacon_source": beacon_source,
    }
    index = vault.append_record(record)
    logger.info("inspection draw for %s committed at leaf %d", purpose, index)
    return index


def _commitment_problems(record: Mapping[str, Any], public: Mapping[str, Any]) -> list[str]:
    """How a logged commitment record fails to cover a published draw."""
    problems = []
    if record.get("commitment") != public.get("commitment"):
        problems.append(
            f"the logged commitment {record.get('commitment')} is not the draw's {public.get('commitment')}"
        )
    if record.get("inputs_sha256") is not None:
        try:
            _, _, spec, candidates, pool = _parse(public)
            digest: str | None = inputs_digest(spec, candidates, pool)
        except (KeyError, TypeError, ValueError, AttributeError):
            digest = None
        if digest != record["inputs_sha256"]:
            problems.append("the draw's inputs (spec, candidates, pool) are not the ones committed to")
    if public.get("beacon") is not None and record.get("beacon_source") is None:
        problems.append("the draw uses a beacon that its commitment did not announce")
    if public.get("beacon") is None and record.get("beacon_source") is not None:
        problems.append(f"the commitment announced the beacon {record['beacon_source']!r} but the draw does not use it")
    return problems


def publish_to_log(vault: Vault, result: DrawResult, commitment_leaf: int, *, at: datetime | None = None) -> int:
    """Log the published document of a draw whose commitment is at `commitment_leaf`; returns its leaf.

    Refused when that leaf is not a logged commitment that covers this draw.
    """
    public = to_public(result)
    record = dict(vault.records(COMMITMENT_RECORD)).get(commitment_leaf)
    if record is None:
        raise DrawError(
            f"leaf {commitment_leaf} is not a logged draw commitment; "
            "log commit(seed) with commit_to_log before drawing and pass the leaf it returns"
        )
    problems = _commitment_problems(record, public)
    if problems:
        raise DrawError(f"the commitment at leaf {commitment_leaf} does not cover this draw: {'; '.join(problems)}")
    index = vault.append_record(
        {
            "type": PUBLISHED_RECORD,
            "commitment_leaf": commitment_leaf,
            "at": _iso(at or datetime.now(UTC)),
            "draw": public,
        }
    )
    logger.info("inspection draw of commitment leaf %d published at leaf %d", commitment_leaf, index)
    return index


def verify_against_log(vault: Vault, published: Mapping[str, Any]) -> list[str]:
    """What is wrong with a published draw (nothing: an empty list), checked against the log too.

    Besides `verify`: the document must be logged as a publication, the commitment leaf it
    names must come before that publication and cover the draw (seed, inputs, beacon), and
    no other commitment for the same purpose may come between them or before (a re-draw).
    """
    problems = verify(published)
    try:
        wanted = canonical_json(published)
        commitments = dict(vault.records(COMMITMENT_RECORD))
        publications = [(i, r) for i, r in vault.records(PUBLISHED_RECORD) if canonical_json(r.get("draw")) == wanted]
    except (CanonicalJSONError, ValueError) as e:
        return [*problems, f"cannot read the log: {e}"]
    if not publications:
        return [*problems, "this draw is not published in the log"]
    published_leaf, record = publications[0]
    commitment_leaf = record.get("commitment_leaf")
    commitment = commitments.get(commitment_leaf) if isinstance(commitment_leaf, int) else None
    if commitment is None or not isinstance(commitment_leaf, int):
        return [*problems, f"the publication at leaf {published_leaf} names {commitment_leaf!r}, not a commitment leaf"]
    if commitment_leaf >= published_leaf:
        problems.append(
            f"the commitment (leaf {commitment_leaf}) was logged after the publication (leaf {published_leaf}), "
            "so the seed may have been chosen after seeing the draw"
        )
    problems += _commitment_problems(commitment, published)
    redraws = sorted(
        i
        for i, r in commitments.items()
        if i != commitment_leaf and i < published_leaf and r.get("purpose") == commitment.get("purpose")
    )
    if redraws:
        problems.append(
            f"purpose {commitment.get('purpose')!r} was also committed at leaves {redraws}: the draw was re-done"
        )
    return problems
