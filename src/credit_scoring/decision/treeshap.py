"""Exact TreeSHAP contributions by table look-up: LightGBM's own numbers, ~10x faster.

LightGBM's ``pred_contrib`` walks every path of every tree for every row (O(T·L·D²) per
row: trees, leaves, depth), ~25x the cost of a prediction. But one tree's contributions
depend on a row only through which side of each of the tree's thresholds each of its
features falls (and whether it is missing): a handful of *bins* per (tree, feature). So
the contributions of a tree take at most ``prod(bins of its features)`` different values,
a few hundred to a few thousand for the project's trees (<= 15 leaves). They are
computed once per model, **by LightGBM itself** (``pred_contrib`` of that one tree on one
representative row per pattern), and stored in a table. Per row, the contributions are
then: bin every feature once against all thresholds, combine each tree's bins into its
pattern index, look the tree's contributions up and add them per feature: O(T·D) per
row, all in vectorised numpy, in threads (numpy releases the GIL) over chunks of rows.

Exact: every table entry is LightGBM's own per-tree value for a row that takes the same
branch at every node of that tree as the real row (the real row would get exactly the
same value), and the bias is LightGBM's own; only the order in which the trees' values
are summed differs (float rounding, ~1e-15). The tests hold it to ``pred_contrib`` at
1e-9 on models with missing values and monotone constraints.

Not covered (:class:`Unsupported`, the caller uses ``pred_contrib``): categorical
splits, multi-class boosters, and models whose tables would exceed
:data:`MAX_TABLE_VALUES`.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

#: Upper bound on the stored contributions of one model (float64): 2**25 = 256 MiB
#: (int32 indices stay far below 2**31).
MAX_TABLE_VALUES = 2**25
#: LightGBM's ``kZeroThreshold``: values with ``|x| <= kZeroThreshold`` are read as 0.0,
#: and ``missing_type: Zero`` nodes send them the default way.
K_ZERO = float(np.float32(1e-35))
#: ``dump_model`` writes an infinite threshold as 1e300.
_JSON_INF = 1e300
#: Rows per chunk: big enough that numpy's per-call cost is small, small enough that a
#: chunk's (slots x rows) arrays stay in cache (measured: 256 rows 2.4x cheaper than 4,096)
CHUNK_ROWS = 256
#: Representative rows per ``pred_contrib`` call while building the tables.
_BUILD_ROWS = 65_536


class Unsupported(ValueError):
    """The booster has something the tables do not cover (use ``pred_contrib``)."""


@dataclass(frozen=True)
class ShapTables:
    """Everything a row needs to get its contributions by look-up (see the module doc).

    Trees are laid out in ``width`` slots (the most features any tree splits on); a slot
    is a (tree, feature) pair, or padding that adds 0 to the pattern and is summed with
    weight 0.
    """

    n_features: int
    bias: float
    cols: np.ndarray  # (Fu,) the features any tree splits on
    bounds: tuple[np.ndarray, ...]  # per column, its thresholds ascending
    bound_col: np.ndarray  # (B,) index into cols of each threshold, grouped by column
    bound_thr: np.ndarray  # (B,) the thresholds, ascending within a column
    bound_starts: np.ndarray  # (Fu,) first threshold of each column (reduceat)
    nan_bin: np.ndarray  # (Fu,) the global bin of a missing value (= #thresholds + 1)
    slot_col: np.ndarray  # (T', width) index into cols (0 for padding)
    slot_off: np.ndarray  # (T', width) where the slot's look-up starts in lut
    lut: np.ndarray  # int32: global bin -> offset of the pattern in the tree's table
    tree_base: np.ndarray  # (T',) where each tree's table starts in values
    by_feature: np.ndarray  # (Q,) the real slots (into T' * width), by column then tree
    feature_ends: np.ndarray  # (Fu,) last position of each column in by_feature
    values: np.ndarray  # float64: per tree (patterns, n features of the tree), then 0s

    @property
    def size(self) -> int:
        return int(self.values.size)


def _decide_left(x: np.ndarray, node: dict[str, Any]) -> np.ndarray:
    """LightGBM's numerical decision (``Tree::NumericalDecision``) for values ``x``."""
    missing = node["missing_type"]
    x = np.where(np.abs(x) <= K_ZERO, 0.0, x)  # the predictor reads these as 0.0
    if missing != "NaN":
        x = np.where(np.isnan(x), 0.0, x)
    default = (np.isnan(x) if missing == "NaN" else np.zeros(x.shape, dtype=bool)) | (
        (np.abs(x) <= K_ZERO) if missing == "Zero" else False
    )
    thr = np.inf if node["threshold"] >= _JSON_INF else node["threshold"]
    with np.errstate(invalid="ignore"):
        return np.where(default, bool(node["default_left"]), x <= thr)


def _split_nodes(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out, stack = [], [tree]
    while stack:
        nd = stack.pop()
        if "leaf_index" in nd or "leaf_value" in nd:
            continue
        if nd.get("decision_type") != "<=":
            raise Unsupported(f"a {nd.get('decision_type')!r} (categorical) split")
        out.append(nd)
        stack.extend((nd["left_child"], nd["right_child"]))
    return out


def build_tables(
    booster: lgb.Booster, num_iteration: int | None = None, max_values: int = MAX_TABLE_VALUES
) -> ShapTables:
    """The look-up tables of ``booster``'s first ``num_iteration`` trees (None/<=0: all).

    Raises:
        Unsupported: categorical splits, several outputs, or tables over ``max_values``.
    """
    model = booster.dump_model(num_iteration=num_iteration)
    if model.get("num_tree_per_iteration", 1) != 1:
        raise Unsupported("several trees per iteration (multi-class)")
    trees = [t["tree_structure"] for t in model["tree_info"]]
    n_features = booster.num_feature()
    nodes = [_split_nodes(t) for t in trees]
    # global bins per feature: the sorted thresholds of every tree (plus the zero range
    # where a node treats zero as missing); bin b = (thr[b-1], thr[b]], then NaN
    thresholds: dict[int, set[float]] = {}
    for tree_nodes in nodes:
        for nd in tree_nodes:
            s = thresholds.setdefault(int(nd["split_feature"]), set())
            thr = float(nd["threshold"])
            s.add(np.inf if thr >= _JSON_INF else thr)
            if nd["missing_type"] == "Zero" or -K_ZERO <= thr <= K_ZERO:
                # values in [-K_ZERO, K_ZERO] are read as 0.0: a bin of their own, so
                # that every bin is read the same way as its representative
                s.update((float(np.nextafter(-K_ZERO, -np.inf)), K_ZERO))
    cols = np.array(sorted(thresholds), dtype=np.int64)
    col_of = {int(j): i for i, j in enumerate(cols)}
    bounds = [np.array(sorted(thresholds[int(j)])) for j in cols]
    reps = [  # one value per global bin (the bin's upper end), then NaN
        np.concatenate([b, [np.nextafter(b[-1], np.inf), np.nan]]) for b in bounds
    ]
    probe = np.zeros((1, n_features))
    bias = float(
        booster.predict(probe, pred_contrib=True, num_iteration=num_iteration, num_threads=1)[0, -1]
    )
    zero_lut = max((len(r) for r in reps), default=0)  # padding reads 0s here
    lut_parts: list[np.ndarray] = [np.zeros(zero_lut, dtype=np.int64)]
    tree_base: list[int] = []
    slots: list[list[tuple[int, int]]] = []  # per tree: (column, lut offset) per feature
    value_parts: list[np.ndarray] = []
    n_lut, n_values = zero_lut, 0
    for t, tree_nodes in enumerate(nodes):
        if not tree_nodes:
            continue  # a single leaf: only the bias
        by_feature: dict[int, list[dict[str, Any]]] = {}
        for nd in tree_nodes:
            by_feature.setdefault(int(nd["split_feature"]), []).append(nd)
        feats = sorted(by_feature)
        local, rep_local = [], []
        for j in feats:
            r = reps[col_of[j]]
            decisions = np.column_stack([_decide_left(r, nd) for nd in by_feature[j]])
            _, first, inverse = np.unique(decisions, axis=0, return_index=True, return_inverse=True)
            local.append(inverse.reshape(-1))
            rep_local.append(r[first])
        sizes = [len(r) for r in rep_local]
        n_patterns, width = math.prod(sizes), len(feats)
        n_values += n_patterns * width
        if n_values > max_values:
            raise Unsupported(f"tables over {max_values:,} values")
        strides = [math.prod(sizes[i + 1 :]) for i in range(width)]
        # every pattern once, the last feature's bin varying fastest (as the strides say)
        grid = np.stack(np.meshgrid(*rep_local, indexing="ij"), axis=-1).reshape(-1, width)
        for s in range(0, n_patterns, _BUILD_ROWS):
            X = np.zeros((min(_BUILD_ROWS, n_patterns - s), n_features))
            X[:, feats] = grid[s : s + _BUILD_ROWS]
            contrib = booster.predict(
                X, pred_contrib=True, start_iteration=t, num_iteration=1, num_threads=1
            )
            value_parts.append(np.ascontiguousarray(contrib[:, feats]).reshape(-1))
        tree_base.append(n_values - n_patterns * width)
        slots.append([])
        for i, j in enumerate(feats):
            slots[-1].append((col_of[j], n_lut))
            lut_parts.append(local[i].astype(np.int64) * strides[i] * width)
            n_lut += len(local[i])
    width = max((len(s) for s in slots), default=0)
    slot_col = np.zeros((len(slots), width), dtype=np.int64)
    slot_off = np.zeros((len(slots), width), dtype=np.int32)  # 0: the zero look-up
    real, real_col = [], []
    for t, tree_slots in enumerate(slots):
        for i, (c, off) in enumerate(tree_slots):
            slot_col[t, i], slot_off[t, i] = c, off
            real.append(t * width + i)
            real_col.append(c)
    order = np.argsort(np.array(real_col, dtype=np.int64), kind="stable")  # trees in order
    by_feature = np.array(real, dtype=np.int64)[order]
    feature_ends = np.searchsorted(np.array(real_col)[order], np.arange(len(cols)), "right") - 1
    return ShapTables(
        n_features=n_features,
        bias=bias,
        cols=cols,
        bounds=tuple(bounds),
        bound_col=np.repeat(np.arange(len(cols)), [len(b) for b in bounds]),
        bound_thr=np.concatenate(bounds) if bounds else np.zeros(0),
        bound_starts=np.cumsum([0] + [len(b) for b in bounds[:-1]]).astype(np.int64),
        nan_bin=np.array([len(b) + 1 for b in bounds], dtype=np.int32),
        slot_col=slot_col,
        slot_off=slot_off,
        lut=np.concatenate(lut_parts).astype(np.int32),
        tree_base=np.array(tree_base, dtype=np.int32),
        by_feature=by_feature,
        feature_ends=feature_ends.astype(np.int64),
        # padding slots read up to width - 1 values past a tree's last pattern
        values=np.concatenate([*value_parts, np.zeros(width)]),
    )


#: From this many rows a chunk bins its features with one ``searchsorted`` per feature;
#: below it, with a few whole-matrix operations (fewer numpy calls for a single request).
_SEARCHSORTED_ROWS = 64


def _global_bins(tables: ShapTables, x: np.ndarray) -> np.ndarray:
    """(Fu, m) int32: per used feature and row, how many of its thresholds lie below the
    value (its global bin), or ``nan_bin`` for a missing value."""
    xt = np.ascontiguousarray(x[:, tables.cols].T)  # (Fu, m)
    if x.shape[0] >= _SEARCHSORTED_ROWS:
        gbin = np.empty(xt.shape, dtype=np.int32)
        for k, b in enumerate(tables.bounds):
            gbin[k] = np.searchsorted(b, xt[k], side="left")
    else:
        with np.errstate(invalid="ignore"):
            above = xt[tables.bound_col] > tables.bound_thr[:, None]  # (B, m)
        gbin = np.add.reduceat(above, tables.bound_starts, axis=0, dtype=np.int32)
    nan = np.isnan(xt)
    if nan.any():
        gbin = np.where(nan, tables.nan_bin[:, None], gbin)
    return gbin


def _chunk(tables: ShapTables, x: np.ndarray, out: np.ndarray) -> None:
    """Contributions of the rows ``x`` (m, f) into ``out`` (m, f), in place.

    Works on (feature or slot, row) arrays, so that picking a column copies a contiguous
    row and sums add whole rows."""
    if tables.cols.size == 0:
        return
    m = x.shape[0]
    gbin = _global_bins(tables, x)
    index = gbin[tables.slot_col]  # (T', w, m)
    index += tables.slot_off[:, :, None]
    offsets = tables.lut.take(index)
    base = offsets.sum(axis=1, dtype=np.int32)  # (T', m)
    base += tables.tree_base[:, None]
    width = tables.slot_col.shape[1]
    index = base[:, None, :] + np.arange(width, dtype=np.int32)[None, :, None]
    vals = tables.values.take(index).reshape(-1, m)[tables.by_feature]  # (Q, m)
    # per column, its trees' values summed in tree order with a running sum: a fixed
    # order whatever the number of rows, so a person's contributions are bit-identical
    # alone or in any batch (a matrix product's order depends on the shapes)
    total = np.cumsum(vals, axis=0)[tables.feature_ends]  # (Fu, m)
    total[1:] -= total[:-1].copy()
    out[:, tables.cols] = total.T


_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            _EXECUTOR = ThreadPoolExecutor(
                max_workers=os.cpu_count() or 1, thread_name_prefix="treeshap"
            )
        return _EXECUTOR


def contributions(
    tables: ShapTables, X: np.ndarray, num_threads: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(contrib (n, f), bias (n,))`` as ``pred_contrib`` returns them (split in two).

    ``num_threads``: 1 = this thread only; 0 = all cores (chunks of :data:`CHUNK_ROWS`
    rows in a shared thread pool; numpy releases the GIL in the heavy loops).
    """
    x = np.ascontiguousarray(X, dtype=np.float64)
    n = x.shape[0]
    out = np.zeros((n, tables.n_features))
    starts = range(0, n, CHUNK_ROWS)
    if num_threads == 1 or n <= CHUNK_ROWS:
        for s in starts:
            _chunk(tables, x[s : s + CHUNK_ROWS], out[s : s + CHUNK_ROWS])
    else:
        jobs = [
            _executor().submit(_chunk, tables, x[s : s + CHUNK_ROWS], out[s : s + CHUNK_ROWS])
            for s in starts
        ]
        for job in jobs:
            job.result()
    return out, np.full(n, tables.bias)


_CACHE: weakref.WeakKeyDictionary[lgb.Booster, dict[int | None, ShapTables | Unsupported]] = (
    weakref.WeakKeyDictionary()
)
_CACHE_LOCK = threading.Lock()


def tables_for(booster: lgb.Booster, num_iteration: int | None = None) -> ShapTables | None:
    """The booster's tables, built once per (booster, num_iteration) and kept while the
    booster lives; None when the booster is not covered (:class:`Unsupported`)."""
    key = None if num_iteration is None else int(num_iteration)
    with _CACHE_LOCK:
        per_booster = _CACHE.setdefault(booster, {})
        if key not in per_booster:
            try:
                per_booster[key] = build_tables(booster, key)
            except Unsupported as exc:
                per_booster[key] = exc
        found = per_booster[key]
    return None if isinstance(found, Unsupported) else found
