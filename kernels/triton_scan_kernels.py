"""Triton kernels for the HGRN scan h_t = exp(log_f_t + i*theta_d) * h_{t-1} + x_t over (B, T, D).

Only the kernels live here; launching, the T-split plan and autograd are in ``triton_scan.py``.

Layout: every (B, T, D) tensor is contiguous with D fastest; complex tensors arrive as their
``torch.view_as_real`` float planes, so element (b, t, d) sits at ((b*T + t)*D + d)*2 + {0: re, 1: im}.
A program owns one batch row, a block of BD channels and one chunk of CT time steps (the whole sequence
unless T is split across programs). It walks its chunk in tiles of BT x BD, scans each tile down the time
axis with ``tl.associative_scan`` (forward direction only: the reverse direction is index arithmetic on the
loads and stores) and carries the fp32 (fp64 for fp64 inputs) state from tile to tile in registers.

"Own order" u = 0, 1, ... is the order in which a kernel visits time steps: t = u, or t = T-1-u when REV.
"""
from __future__ import annotations

import triton
import triton.language as tl

# ---------------------------------------------------------------------------------------------------------
# Combine functions for tl.associative_scan: (a, b)_left then (a, b)_right = (a_r a_l, a_r b_l + b_r).


@triton.jit
def _combine_real(a_l, b_l, a_r, b_r):
    return a_r * a_l, a_r * b_l + b_r


@triton.jit
def _combine_real_gate(a_l, br_l, bi_l, a_r, br_r, bi_r):
    # Real gate, complex value: the two planes share the gate.
    return a_r * a_l, a_r * br_l + br_r, a_r * bi_l + bi_r


@triton.jit
def _combine_complex(ar_l, ai_l, br_l, bi_l, ar_r, ai_r, br_r, bi_r):
    ar = ar_r * ar_l - ai_r * ai_l
    ai = ar_r * ai_l + ai_r * ar_l
    br = ar_r * br_l - ai_r * bi_l + br_r
    bi = ar_r * bi_l + ai_r * br_l + bi_r
    return ar, ai, br, bi


@triton.jit
def _scan_tile(ar, ai, br, bi, cr, ci, GATE_CPLX: tl.constexpr, VAL_CPLX: tl.constexpr):
    """Inclusive scan of h = a*h + b down axis 0, seeded with the carry c (one value per column).

    Returns h (re, im) and the cumulative gate product (re, im); imaginary parts are zeros when real.
    """
    if GATE_CPLX:
        acr, aci, hr, hi = tl.associative_scan((ar, ai, br, bi), 0, _combine_complex)
        hr2 = hr + acr * cr[None, :] - aci * ci[None, :]
        hi2 = hi + acr * ci[None, :] + aci * cr[None, :]
    elif VAL_CPLX:
        acr, hr, hi = tl.associative_scan((ar, br, bi), 0, _combine_real_gate)
        aci = tl.zeros_like(acr)
        hr2 = hr + acr * cr[None, :]
        hi2 = hi + acr * ci[None, :]
    else:
        acr, hr = tl.associative_scan((ar, br), 0, _combine_real)
        aci = tl.zeros_like(acr)
        hr2 = hr + acr * cr[None, :]
        hi2 = tl.zeros_like(hr2)
    return hr2, hi2, acr, aci


@triton.jit
def _last_row(v, BT: tl.constexpr):
    # Tiles are padded with the identity (gate 1, input 0), so the last row is the state after the last
    # valid step. A masked sum is the portable way to read one row of a register tile.
    rows = tl.arange(0, BT)
    return tl.sum(tl.where(rows[:, None] == BT - 1, v, 0.0), axis=0)


# ---------------------------------------------------------------------------------------------------------
# Addressing. A tile's addresses are a scalar int64 row offset (`row0`, the element offset of its first
# row in own order) plus int32 offsets inside the tile (`loc`, the same for every tile of a program):
# 64-bit arithmetic where B*T*D can exceed 2^31, cheap 32-bit arithmetic per element. Complex storage
# doubles both.


@triton.jit
def _program_coords(NC, NDB, BD: tl.constexpr):
    # 1-D grid (no grid.y limit): pid = (b * NDB + j) * NC + (NC - 1 - c). Chunks are independent within
    # a launch; numbering them backwards makes the sequential interpreter run the last chunk (the one
    # that owns dh0) first, so a tested run would expose any store not confined to its owner.
    pid = tl.program_id(0)
    c = NC - 1 - pid % NC
    j = (pid // NC) % NDB
    b = pid // (NC * NDB)
    d = j * BD + tl.arange(0, BD)
    return b, c, d


@triton.jit
def _tile_loc(d, D, BT: tl.constexpr, REV: tl.constexpr):
    # Own row j of a tile is time t0 + j (t0 - j when REV): reversal is index arithmetic, no flip.
    j = tl.arange(0, BT)
    if REV:
        j = -j
    return j[:, None] * D + d[None, :]


@triton.jit
def _row0(b, us, T, D, REV: tl.constexpr):
    t0 = (T - 1 - us) if REV else us
    return (b.to(tl.int64) * T + t0) * D


@triton.jit
def _plane(NC, NDB, D):
    # Elements per plane of the (4, B, NC, D) summary buffer; B = number of programs / (NC * NDB).
    return (tl.num_programs(0) // (NC * NDB)).to(tl.int64) * NC * D


@triton.jit
def _cast_for(v, ptr):
    # fp64 -> bf16 goes through fp32: the interpreter's direct conversion yields NaN (Triton 3.8), and on
    # the GPU the double rounding is far below bf16's resolution.
    if ptr.dtype.element_ty == tl.bfloat16:
        v = v.to(tl.float32)
    return v.to(ptr.dtype.element_ty)


@triton.jit
def _load_pair(ptr, row0, loc, mask, IS_CPLX: tl.constexpr, ACC: tl.constexpr):
    """Load a (BT, BD) tile as (re, im) in ACC; im is zeros for real storage."""
    if IS_CPLX:
        two = tl.arange(0, 2)
        pair = tl.load(ptr + row0 * 2 + (loc * 2)[:, :, None] + two[None, None, :], mask=mask[:, :, None],
                       other=0.0)
        re, im = tl.split(pair.to(ACC))
    else:
        re = tl.load(ptr + row0 + loc, mask=mask, other=0.0).to(ACC)
        im = tl.zeros_like(re)
    return re, im


@triton.jit
def _store_pair(ptr, row0, loc, mask, re, im, IS_CPLX: tl.constexpr):
    """Store a (BT, BD) tile; real storage keeps only re (the real part of a complex gradient)."""
    if IS_CPLX:
        two = tl.arange(0, 2)
        tl.store(ptr + row0 * 2 + (loc * 2)[:, :, None] + two[None, None, :], _cast_for(tl.join(re, im), ptr),
                 mask=mask[:, :, None])
    else:
        tl.store(ptr + row0 + loc, _cast_for(re, ptr), mask=mask)


@triton.jit
def _load_vec(ptr, off, mask, IS_CPLX: tl.constexpr, ACC: tl.constexpr):
    """Load a (BD,) row at int64 element offsets `off` as (re, im) in ACC."""
    if IS_CPLX:
        re = tl.load(ptr + off * 2, mask=mask, other=0.0).to(ACC)
        im = tl.load(ptr + off * 2 + 1, mask=mask, other=0.0).to(ACC)
    else:
        re = tl.load(ptr + off, mask=mask, other=0.0).to(ACC)
        im = tl.zeros_like(re)
    return re, im


@triton.jit
def _store_vec(ptr, off, mask, re, im, IS_CPLX: tl.constexpr):
    if IS_CPLX:
        tl.store(ptr + off * 2, _cast_for(re, ptr), mask=mask)
        tl.store(ptr + off * 2 + 1, _cast_for(im, ptr), mask=mask)
    else:
        tl.store(ptr + off, _cast_for(re, ptr), mask=mask)


@triton.jit
def _gate(lf_ptr, row0, loc, mask, cs, sn, HAS_THETA: tl.constexpr, ACC: tl.constexpr):
    """exp(log_f) * (cos theta + i sin theta), with the identity (1 + 0i) where masked.

    The padding is applied after the transform: a zero log gate is the identity only without a phase.
    """
    mag = tl.exp(tl.load(lf_ptr + row0 + loc, mask=mask, other=0.0).to(ACC))
    if HAS_THETA:
        ar = tl.where(mask, mag * cs[None, :], 1.0)
        ai = tl.where(mask, mag * sn[None, :], 0.0)
    else:
        ar = tl.where(mask, mag, 1.0)
        ai = tl.zeros_like(ar)
    return ar, ai


@triton.jit
def _phase(theta_ptr, d, dmask, HAS_THETA: tl.constexpr, ACC: tl.constexpr):
    """cos and sin of the per-channel phase (zeros when there is none; they are then unused)."""
    if HAS_THETA:
        th = tl.load(theta_ptr + d, mask=dmask, other=0.0).to(ACC)
    else:
        th = tl.zeros(d.shape, ACC)
    return tl.cos(th), tl.sin(th)


@triton.jit
def _carry_in(sum_ptr, b, c, d, dmask, NC, D, plane, cr, ci,
              NCB: tl.constexpr, GATE_CPLX: tl.constexpr, VAL_CPLX: tl.constexpr, ACC: tl.constexpr):
    """State entering chunk c: fold the summaries (A, H) of chunks 0..c-1 onto the carry (h0 or 0).

    Summaries are read NCB chunks at a time and folded with one small parallel scan per block, so the
    serial part is c / NCB dependent steps rather than c.
    """
    k = tl.arange(0, NCB)
    for k0 in range(0, c, NCB):
        kk = k0 + k
        m = (kk[:, None] < c) & dmask[None, :]
        off = (b * NC + kk).to(tl.int64)[:, None] * D + d[None, :]
        ar = tl.load(sum_ptr + off, mask=m, other=1.0).to(ACC)
        br = tl.load(sum_ptr + 2 * plane + off, mask=m, other=0.0).to(ACC)
        if GATE_CPLX:
            ai = tl.load(sum_ptr + plane + off, mask=m, other=0.0).to(ACC)
        else:
            ai = tl.zeros_like(ar)
        if VAL_CPLX:
            bi = tl.load(sum_ptr + 3 * plane + off, mask=m, other=0.0).to(ACC)
        else:
            bi = tl.zeros_like(br)
        hr, hi, _, _ = _scan_tile(ar, ai, br, bi, cr, ci, GATE_CPLX, VAL_CPLX)
        cr = _last_row(hr, NCB)
        if VAL_CPLX:
            ci = _last_row(hi, NCB)
    return cr, ci


# ---------------------------------------------------------------------------------------------------------
# Kernels. All three share the program layout (b, chunk c, channel block) and the own-order walk
# u = c*CT ... min((c+1)*CT, T) - 1 in tiles of BT; `tl.range(..., num_stages=STAGES)` lets the compiler
# prefetch the next tiles (cp.async on sm_80+) while the current one is scanned.


@triton.jit(do_not_specialize=["T", "CT", "NC"])
def hgrn_chunk_summary_kernel(
    in_ptr, lf_ptr, theta_ptr, sum_ptr,
    T, D, CT, NC, NDB,
    BT: tl.constexpr, BD: tl.constexpr, STAGES: tl.constexpr, REV: tl.constexpr, GATE_SHIFT: tl.constexpr,
    IN_CPLX: tl.constexpr, HAS_THETA: tl.constexpr, VAL_CPLX: tl.constexpr, ACC: tl.constexpr,
):
    """Pass 1 of the T-split: each chunk's gate product A and its state H started from zero.

    Writes four (B, NC, D) planes of `sum_ptr` (A re, A im, H re, H im). GATE_SHIFT selects the backward's
    recurrence: the gate of own step u is conj(a) of own step u-1.
    """
    b, c, d = _program_coords(NC, NDB, BD)
    dmask = d < D
    cs, sn = _phase(theta_ptr, d, dmask, HAS_THETA, ACC)
    if GATE_SHIFT:
        sn = -sn
    loc = _tile_loc(d, D, BT, REV)
    shift = (D if REV else -D) if GATE_SHIFT else 0
    acc_ar = tl.full((BD,), 1.0, ACC)
    acc_ai = tl.zeros((BD,), ACC)
    hr_c = tl.zeros((BD,), ACC)
    hi_c = tl.zeros((BD,), ACC)
    u0 = c * CT
    u1 = tl.minimum(u0 + CT, T)
    for us in tl.range(u0, u1, BT, num_stages=STAGES):
        u = us + tl.arange(0, BT)
        valid = u < u1
        m2 = valid[:, None] & dmask[None, :]
        row0 = _row0(b, us, T, D, REV)
        if GATE_SHIFT:
            mg = (valid & (u >= 1))[:, None] & dmask[None, :]
            ar, ai = _gate(lf_ptr, row0, loc + shift, mg, cs, sn, HAS_THETA, ACC)
        else:
            ar, ai = _gate(lf_ptr, row0, loc, m2, cs, sn, HAS_THETA, ACC)
        xr, xi = _load_pair(in_ptr, row0, loc, m2, IN_CPLX, ACC)
        if not VAL_CPLX:
            xi = tl.zeros_like(xr)  # a real direction of a complex output gradient only sees Re(g)
        hr, hi, pr, pi = _scan_tile(ar, ai, xr, xi, hr_c, hi_c, HAS_THETA, VAL_CPLX)
        hr_c = _last_row(hr, BT)
        tr = _last_row(pr, BT)
        if VAL_CPLX:
            hi_c = _last_row(hi, BT)
        if HAS_THETA:
            ti = _last_row(pi, BT)
            acc_ar, acc_ai = tr * acc_ar - ti * acc_ai, tr * acc_ai + ti * acc_ar
        else:
            acc_ar = tr * acc_ar
    plane = _plane(NC, NDB, D)
    soff = (b * NC + c).to(tl.int64) * D + d
    tl.store(sum_ptr + soff, acc_ar, mask=dmask)
    tl.store(sum_ptr + plane + soff, acc_ai, mask=dmask)
    tl.store(sum_ptr + 2 * plane + soff, hr_c, mask=dmask)
    tl.store(sum_ptr + 3 * plane + soff, hi_c, mask=dmask)


@triton.jit(do_not_specialize=["T", "CT", "NC"])
def hgrn_scan_fwd_kernel(
    x_ptr, lf_ptr, theta_ptr, h0_ptr, sum_ptr, out_ptr, add_ptr, save_ptr,
    T, D, CT, NC, NDB,
    BT: tl.constexpr, BD: tl.constexpr, STAGES: tl.constexpr, NCB: tl.constexpr, REV: tl.constexpr,
    X_CPLX: tl.constexpr, HAS_THETA: tl.constexpr, VAL_CPLX: tl.constexpr,
    HAS_H0: tl.constexpr, H0_CPLX: tl.constexpr, SPLIT: tl.constexpr,
    OUT_CPLX: tl.constexpr, HAS_ADD: tl.constexpr, ADD_CPLX: tl.constexpr, HAS_SAVE: tl.constexpr,
    ACC: tl.constexpr,
):
    """h = scan(x) in own order; out = h (+ add, the other direction of a fused bidirectional scan).

    HAS_SAVE also stores this direction's own h (needed by the backward of the bidirectional scan).
    Reading `add` and writing `out` may alias: each element is read and written by the same thread.
    """
    b, c, d = _program_coords(NC, NDB, BD)
    dmask = d < D
    cs, sn = _phase(theta_ptr, d, dmask, HAS_THETA, ACC)
    loc = _tile_loc(d, D, BT, REV)
    cr = tl.zeros((BD,), ACC)
    ci = tl.zeros((BD,), ACC)
    if HAS_H0:
        cr, ci = _load_vec(h0_ptr, b.to(tl.int64) * D + d, dmask, H0_CPLX, ACC)
    if SPLIT:
        cr, ci = _carry_in(sum_ptr, b, c, d, dmask, NC, D, _plane(NC, NDB, D), cr, ci,
                           NCB, HAS_THETA, VAL_CPLX, ACC)
    u0 = c * CT
    u1 = tl.minimum(u0 + CT, T)
    for us in tl.range(u0, u1, BT, num_stages=STAGES):
        u = us + tl.arange(0, BT)
        m2 = (u < u1)[:, None] & dmask[None, :]
        row0 = _row0(b, us, T, D, REV)
        ar, ai = _gate(lf_ptr, row0, loc, m2, cs, sn, HAS_THETA, ACC)
        xr, xi = _load_pair(x_ptr, row0, loc, m2, X_CPLX, ACC)
        hr, hi, _, _ = _scan_tile(ar, ai, xr, xi, cr, ci, HAS_THETA, VAL_CPLX)
        cr = _last_row(hr, BT)
        if VAL_CPLX:
            ci = _last_row(hi, BT)
        if HAS_SAVE:
            _store_pair(save_ptr, row0, loc, m2, hr, hi, VAL_CPLX)
        if HAS_ADD:
            pr, pi = _load_pair(add_ptr, row0, loc, m2, ADD_CPLX, ACC)
            hr = hr + pr
            hi = hi + pi
        _store_pair(out_ptr, row0, loc, m2, hr, hi, OUT_CPLX)


@triton.jit(do_not_specialize=["T", "CT", "NC"])
def hgrn_scan_bwd_kernel(
    g_ptr, lf_ptr, theta_ptr, hs_ptr, h0_ptr, sum_ptr,
    dx_ptr, dlf_ptr, dth_ptr, dh0_ptr,
    T, D, CT, NC, NDB,
    BT: tl.constexpr, BD: tl.constexpr, STAGES: tl.constexpr, NCB: tl.constexpr, REV: tl.constexpr,
    G_CPLX: tl.constexpr, X_CPLX: tl.constexpr, HAS_THETA: tl.constexpr, VAL_CPLX: tl.constexpr,
    HAS_H0: tl.constexpr, H0_CPLX: tl.constexpr, SPLIT: tl.constexpr, ACCUM: tl.constexpr,
    NEED_DX: tl.constexpr, NEED_DLF: tl.constexpr, NEED_DTH: tl.constexpr, NEED_DH0: tl.constexpr,
    ACC: tl.constexpr,
):
    """Backward of one direction, walked in the opposite order (REV here is the forward's `not reverse`).

    G_u = g_u + conj(a at own step u-1) * G_{u-1}: the output-gradient scan with the gate shifted by one.
    With W = conj(a_t) G_t and h_prev the forward's previous state (the saved output one forward step
    back, h0 at the boundary): dx = G, dlog_f = Re(conj(h_prev) W), and Im(conj(h_prev) W) summed over
    this program's rows is its dtheta partial (one (BD,) row per program in dth_ptr); dh0 = W at the
    forward's first step. ACCUM adds dx and dlog_f to what is already stored (the second direction of
    a bidirectional scan).
    """
    b, c, d = _program_coords(NC, NDB, BD)
    dmask = d < D
    cs, sn = _phase(theta_ptr, d, dmask, HAS_THETA, ACC)
    loc = _tile_loc(d, D, BT, REV)
    step = D if REV else -D  # element offset of one own step back (= one forward step ahead)
    cr = tl.zeros((BD,), ACC)
    ci = tl.zeros((BD,), ACC)
    if SPLIT:
        cr, ci = _carry_in(sum_ptr, b, c, d, dmask, NC, D, _plane(NC, NDB, D), cr, ci,
                           NCB, HAS_THETA, VAL_CPLX, ACC)
    h0r = tl.zeros((BD,), ACC)
    h0i = tl.zeros((BD,), ACC)
    if HAS_H0:
        h0r, h0i = _load_vec(h0_ptr, b.to(tl.int64) * D + d, dmask, H0_CPLX, ACC)
    dth = tl.zeros((BT, BD), ACC)  # reduced over rows once, after the loop
    u0 = c * CT
    u1 = tl.minimum(u0 + CT, T)
    for us in tl.range(u0, u1, BT, num_stages=STAGES):
        u = us + tl.arange(0, BT)
        valid = u < u1
        m2 = valid[:, None] & dmask[None, :]
        row0 = _row0(b, us, T, D, REV)
        # Gate of the gradient recurrence: conj(a) one own step back (identity at the very first step).
        mg = (valid & (u >= 1))[:, None] & dmask[None, :]
        ar, ai = _gate(lf_ptr, row0, loc + step, mg, cs, -sn, HAS_THETA, ACC)
        gr, gi = _load_pair(g_ptr, row0, loc, m2, G_CPLX, ACC)
        if not VAL_CPLX:
            gi = tl.zeros_like(gr)  # a real direction of a complex output only sees Re(g)
        Gr, Gi, _, _ = _scan_tile(ar, ai, gr, gi, cr, ci, HAS_THETA, VAL_CPLX)
        cr = _last_row(Gr, BT)
        if VAL_CPLX:
            ci = _last_row(Gi, BT)
        if NEED_DX:
            dxr = Gr
            dxi = Gi
            if ACCUM:
                pr, pi = _load_pair(dx_ptr, row0, loc, m2, X_CPLX, ACC)
                dxr = dxr + pr
                dxi = dxi + pi
            _store_pair(dx_ptr, row0, loc, m2, dxr, dxi, X_CPLX)
        if NEED_DLF or NEED_DTH:
            atr, ati = _gate(lf_ptr, row0, loc, m2, cs, sn, HAS_THETA, ACC)
            # The forward's previous step is one own step ahead; it exists unless u is the last step.
            inside = (u + 1) < T
            mp = (valid & inside)[:, None] & dmask[None, :]
            hpr, hpi = _load_pair(hs_ptr, row0, loc - step, mp, VAL_CPLX, ACC)
            hpr = tl.where(inside[:, None], hpr, h0r[None, :])
            if VAL_CPLX:
                hpi = tl.where(inside[:, None], hpi, h0i[None, :])
            if HAS_THETA:
                wr = atr * Gr + ati * Gi
                wi = atr * Gi - ati * Gr
            else:
                wr = atr * Gr
                wi = atr * Gi
            if VAL_CPLX:
                p_re = hpr * wr + hpi * wi
                p_im = hpr * wi - hpi * wr
            else:
                p_re = hpr * wr
                p_im = tl.zeros_like(p_re)
            if NEED_DLF:
                if ACCUM:
                    p_re = p_re + tl.load(dlf_ptr + row0 + loc, mask=m2, other=0.0).to(ACC)
                tl.store(dlf_ptr + row0 + loc, _cast_for(p_re, dlf_ptr), mask=m2)
            if NEED_DTH:
                dth += tl.where(m2, p_im, 0.0)
    if NEED_DTH:
        tl.store(dth_ptr + (b * NC + c).to(tl.int64) * D + d, tl.sum(dth, axis=0), mask=dmask)
    if NEED_DH0:
        # dh0 = conj(a at the forward's first step) * G there; that G is the carry after the last chunk.
        t_first = 0 if REV else T - 1
        mag = tl.exp(tl.load(lf_ptr + (b.to(tl.int64) * T + t_first) * D + d, mask=dmask, other=0.0).to(ACC))
        if HAS_THETA:
            wr0 = mag * (cs * cr + sn * ci)
            wi0 = mag * (cs * ci - sn * cr)
        else:
            wr0 = mag * cr
            wi0 = mag * ci
        _store_vec(dh0_ptr, b.to(tl.int64) * D + d, dmask & (c == NC - 1), wr0, wi0, H0_CPLX)
