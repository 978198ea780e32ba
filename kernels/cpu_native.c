/* Native CPU kernels for the gated linear recurrence h_t = a_t * h_{t-1} + x_t (kernels/cpu_native.py).

   Why: on the CPU the PyTorch scan (kernels/cpu_scan.py) is dispatch-bound, a few thousand small ops per
   scan, and it makes several passes over memory. Here one call walks time once, keeping each block of
   channels' state in registers; blocks of (row, channels) are shared out over OpenMP threads (the same
   libgomp PyTorch uses, so no second thread pool).

   Compiled twice, with SCALAR float (suffix _f32) and double (suffix _f64): see kernels/cpu_native.py.
   Layout: every tensor is a (B, L, D) view with channels contiguous; strides are in SCALARs for the B and L
   axes. Complex values are interleaved (re, im), so a complex row holds 2*D SCALARs.

   Gate kinds: 0 real gate on real x; 1 real magnitude lam times a per-channel phase (cos, sin) on complex x
   (the HGRU gate lam_t e^{i theta}, never materialised); 2 a full complex gate on complex x. */
#include <stdint.h>
#include <stdlib.h>

#ifndef SCALAR
#define SCALAR float
#define SUFFIX _f32
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define NAME(base) CAT(base, SUFFIX)

#define BLOCK 32        /* channels per work item: the state lives in registers/L1 */
#define PAR_MIN 16384   /* below this many (row, step, channel) elements one thread is faster */

typedef SCALAR real;

static int64_t n_threads(int64_t items, int64_t work, int requested) {
    if (requested <= 1 || work < PAR_MIN || items < 2) return 1;
    return requested < items ? requested : items;
}

/* One step of the forward scan for a block of n channels. store: 0 out = h, 1 out += h, 2 out = a h_prev
   (the gated previous state, v_t = h_t - x_t computed without the cancellation). A literal at every call
   site, so each gets its own branch-free loop. kind as above; gate and phase are offset to the block. */
static inline void forward_row(
    int64_t n, int kind, const real *xp, const real *gp, const real *php, real *op,
    real *restrict hr, real *restrict hi, const int store)
{
    if (kind == 0) {
        for (int64_t j = 0; j < n; j++) {
            const real v = gp[j] * hr[j];
            const real h = v + xp[j];
            hr[j] = h;
            op[j] = store == 0 ? h : store == 1 ? op[j] + h : v;
        }
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        real ar, ai;
        if (kind == 1) {
            ar = gp[j] * php[2 * j];
            ai = gp[j] * php[2 * j + 1];
        } else {
            ar = gp[2 * j];
            ai = gp[2 * j + 1];
        }
        const real vr = ar * hr[j] - ai * hi[j], vi = ar * hi[j] + ai * hr[j];
        const real nr = vr + xp[2 * j], ni = vi + xp[2 * j + 1];
        hr[j] = nr;
        hi[j] = ni;
        op[2 * j] = store == 0 ? nr : store == 1 ? op[2 * j] + nr : vr;
        op[2 * j + 1] = store == 0 ? ni : store == 1 ? op[2 * j + 1] + ni : vi;
    }
}

/* h_t = a_t * h_{t-1} + x_t along L (from L-1 down to 0 with reverse), from h0 (NULL: zero), stored into
   out as ``store`` says (see forward_row). out may alias the gate (kind 2) or x: each position is read
   before it is written. */
void NAME(hgrn_scan_forward)(
    int64_t B, int64_t L, int64_t D, int kind, int reverse, int store, int threads,
    const real *x, int64_t xsb, int64_t xst,
    const real *gate, int64_t gsb, int64_t gst,
    const real *phase,
    const real *h0, int64_t h0sb,
    real *out, int64_t osb, int64_t ost)
{
    const int64_t nb = (D + BLOCK - 1) / BLOCK;
    const int w = kind != 0 ? 2 : 1;   /* SCALARs per channel in x, out, h0 */
    const int gw = kind == 2 ? 2 : 1;  /* SCALARs per channel in the gate */
    int64_t nt = n_threads(B * nb, B * L * D, threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t item = 0; item < B * nb; item++) {
        const int64_t b = item / nb, d0 = (item % nb) * BLOCK;
        const int64_t n = D - d0 < BLOCK ? D - d0 : BLOCK;
        real hr[BLOCK], hi[BLOCK];
        for (int64_t j = 0; j < n; j++) {
            hr[j] = h0 ? h0[b * h0sb + w * (d0 + j)] : 0;
            hi[j] = h0 && w == 2 ? h0[b * h0sb + 2 * (d0 + j) + 1] : 0;
        }
        const real *php = kind == 1 ? phase + 2 * d0 : 0;
        for (int64_t k = 0; k < L; k++) {
            const int64_t t = reverse ? L - 1 - k : k;
            const real *xp = x + b * xsb + t * xst + w * d0;
            const real *gp = gate + b * gsb + t * gst + gw * d0;
            real *op = out + b * osb + t * ost + w * d0;
            if (store == 0)
                forward_row(n, kind, xp, gp, php, op, hr, hi, 0);
            else if (store == 1)
                forward_row(n, kind, xp, gp, php, op, hr, hi, 1);
            else
                forward_row(n, kind, xp, gp, php, op, hr, hi, 2);
        }
    }
}

/* One step of the complex backward for a block of n channels (init: write du and dlog instead of adding;
   a literal at both call sites, so each gets its own branch-free, vectorised loop). */
static inline void backward_complex_row(
    int64_t n, const real *restrict dp, const real *restrict gp, const real *restrict php,
    const real *restrict vp, real *restrict dup, real *restrict dlp,
    real *restrict cr, real *restrict ci, real *restrict th, const int init)
{
    for (int64_t j = 0; j < n; j++) {
        const real Gr = dp[2 * j] + cr[j], Gi = dp[2 * j + 1] + ci[j];
        const real vr = vp[2 * j], vi = vp[2 * j + 1];
        /* conj(v) G = (vr Gr + vi Gi) + i (vr Gi - vi Gr) */
        const real pr = vr * Gr + vi * Gi;
        dup[2 * j] = init ? Gr : dup[2 * j] + Gr;
        dup[2 * j + 1] = init ? Gi : dup[2 * j + 1] + Gi;
        dlp[j] = init ? pr : dlp[j] + pr;
        th[j] += vr * Gi - vi * Gr;
        /* conj(a_t) G_t with a_t = lam_t (c + i s): the carry to the next step of the sweep */
        const real ar = gp[j] * php[2 * j], ai = gp[j] * php[2 * j + 1];
        cr[j] = ar * Gr + ai * Gi;
        ci[j] = ar * Gi - ai * Gr;
    }
}

/* One step of the backward (kinds 0 and 1) for a block of n channels; see hgrn_scan_backward. */
static inline void backward_step(
    int64_t n, int cplx, int init, const real *restrict dp, const real *restrict gp, const real *restrict php,
    const real *restrict vp, real *restrict dup, real *restrict dlp, real *restrict cr, real *restrict ci,
    real *restrict th)
{
    if (!cplx) {
        if (init) {
            for (int64_t j = 0; j < n; j++) {
                const real G = dp[j] + cr[j];
                dup[j] = G;
                dlp[j] = vp[j] * G;
                cr[j] = gp[j] * G;
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                const real G = dp[j] + cr[j];
                dup[j] += G;
                dlp[j] += vp[j] * G;
                cr[j] = gp[j] * G;
            }
        }
    } else if (init) {
        backward_complex_row(n, dp, gp, php, vp, dup, dlp, cr, ci, th, 1);
    } else {
        backward_complex_row(n, dp, gp, php, vp, dup, dlp, cr, ci, th, 0);
    }
}

#define CHUNK 64   /* steps per block of v recomputed in the backward (CHUNK x BLOCK complex: 16 KiB in fp32) */

/* The backward of one scan (kinds 0 and 1), against its direction in one sweep, from the gradient dh
   reaching each state and the scan's gated previous states v_t = a_t h_{t-1}:
       G_t = dh_t + conj(a_{t+1}) G_{t+1}   (t+1: the next step in the scan's direction; G past the end = 0)
       P_t = conj(v_t) G_t
       du_t (+)= G_t,  dlog_t (+)= Re P_t  (the gradient of log lam_t),  dtheta[b, d] = sum_t Im P_t
   v is either given (forward with store 2) or, when v is NULL, recomputed from the scan's input x: a first
   sweep keeps the state entering every CHUNK steps, then each chunk's v is recomputed from its entering
   state into a small per-thread buffer just before the backward sweeps over that chunk. No (B, L, D) v is
   ever held, for one more forward sweep that only reads.
   With init, du and dlog are written instead of accumulated. dlog and dtheta may be NULL. dtheta is a
   (B, D) array of per-row sums (rows run on different threads; the caller sums them).
   For a sequence cut into pieces (kernels/hgru_pieces.py), three optional (B, D) arrays, rows strided by
   h0sb, c0sb, cosb: h0 the state entering the piece (for the recomputed v), c0 the carry conj(a) G from
   the step after the piece, and c_out, which receives the carry the step before the piece needs.
   NULL means zero for h0 and c0 (a whole sequence). Returns 0, or 1 when the per-thread buffers could not
   be allocated. */
int NAME(hgrn_scan_backward)(
    int64_t B, int64_t L, int64_t D, int kind, int reverse, int init, int threads,
    const real *dh, int64_t dsb, int64_t dst,
    const real *gate, int64_t gsb, int64_t gst,
    const real *phase,
    const real *v, int64_t vsb, int64_t vst,
    const real *x, int64_t xsb, int64_t xst,
    real *du, int64_t dusb, int64_t dust,
    real *dlog, int64_t dlsb, int64_t dlst,
    real *dtheta,
    const real *h0, int64_t h0sb, const real *c0, int64_t c0sb, real *c_out, int64_t cosb)
{
    const int64_t nb = (D + BLOCK - 1) / BLOCK;
    const int cplx = kind != 0;
    const int w = cplx ? 2 : 1;          /* SCALARs per channel in dh, v, x, du */
    const int64_t nc = (L + CHUNK - 1) / CHUNK;
    int failed = 0;
    int64_t nt = n_threads(B * nb, B * L * D, threads);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        real *ckpt = 0, *vbuf = 0;
        if (!v) {
            ckpt = (real *)malloc(sizeof(real) * 2 * BLOCK * nc);
            vbuf = (real *)malloc(sizeof(real) * 2 * BLOCK * CHUNK);
            if (!ckpt || !vbuf) {
#pragma omp atomic write
                failed = 1;
            }
        }
#pragma omp for schedule(static)
        for (int64_t item = 0; item < B * nb; item++) {
            if ((!v && (!ckpt || !vbuf)))
                continue;
            const int64_t b = item / nb, d0 = (item % nb) * BLOCK;
            const int64_t n = D - d0 < BLOCK ? D - d0 : BLOCK;
            real cr[BLOCK], ci[BLOCK], th[BLOCK];   /* cr, ci: conj(a_{t+1}) G_{t+1}, carried to step t */
            real zero[2 * BLOCK];  /* scratch: the dlog row when there is none, the states of the first sweep */
            real hr[BLOCK], hi[BLOCK];                /* the forward state while v is recomputed */
            const real *php = cplx ? phase + 2 * d0 : 0;
            for (int64_t j = 0; j < n; j++) {
                cr[j] = c0 ? c0[b * c0sb + w * (d0 + j)] : 0;
                ci[j] = c0 && cplx ? c0[b * c0sb + 2 * (d0 + j) + 1] : 0;
                th[j] = 0;
                hr[j] = h0 ? h0[b * h0sb + w * (d0 + j)] : 0;
                hi[j] = h0 && cplx ? h0[b * h0sb + 2 * (d0 + j) + 1] : 0;
            }
#define ROW(ptr, sb, st, width) ((ptr) + b * (sb) + t * (st) + (width) * d0)
            if (!v) {  /* the states entering each chunk, in the scan's direction */
                for (int64_t c = 0; c < nc; c++) {
                    for (int64_t j = 0; j < n; j++) {
                        ckpt[2 * BLOCK * c + j] = hr[j];
                        ckpt[2 * BLOCK * c + BLOCK + j] = hi[j];
                    }
                    const int64_t end = (c + 1) * CHUNK < L ? (c + 1) * CHUNK : L;
                    for (int64_t s = c * CHUNK; s < end; s++) {
                        const int64_t t = reverse ? L - 1 - s : s;
                        forward_row(n, kind, ROW(x, xsb, xst, w), ROW(gate, gsb, gst, 1), php, zero, hr, hi, 0);
                    }
                }
            }
            /* backward: scan-order steps s from L - 1 down to 0, a chunk at a time */
            for (int64_t c = nc - 1; c >= 0; c--) {
                const int64_t lo = c * CHUNK, hi_s = (c + 1) * CHUNK < L ? (c + 1) * CHUNK : L;
                if (!v) {  /* this chunk's v, from the state entering it */
                    for (int64_t j = 0; j < n; j++) {
                        hr[j] = ckpt[2 * BLOCK * c + j];
                        hi[j] = ckpt[2 * BLOCK * c + BLOCK + j];
                    }
                    for (int64_t s = lo; s < hi_s; s++) {
                        const int64_t t = reverse ? L - 1 - s : s;
                        forward_row(n, kind, ROW(x, xsb, xst, w), ROW(gate, gsb, gst, 1), php,
                                    vbuf + 2 * BLOCK * (s - lo), hr, hi, 2);
                    }
                }
                for (int64_t s = hi_s - 1; s >= lo; s--) {
                    const int64_t t = reverse ? L - 1 - s : s;
                    const real *vp = v ? ROW(v, vsb, vst, w) : vbuf + 2 * BLOCK * (s - lo);
                    real *dlp = dlog ? ROW(dlog, dlsb, dlst, 1) : zero;
                    if (init)
                        backward_step(n, cplx, 1, ROW(dh, dsb, dst, w), ROW(gate, gsb, gst, 1), php, vp,
                                      ROW(du, dusb, dust, w), dlp, cr, ci, th);
                    else
                        backward_step(n, cplx, 0, ROW(dh, dsb, dst, w), ROW(gate, gsb, gst, 1), php, vp,
                                      ROW(du, dusb, dust, w), dlp, cr, ci, th);
                }
            }
#undef ROW
            if (dtheta)
                for (int64_t j = 0; j < n; j++) dtheta[b * D + d0 + j] = (real)th[j];
            if (c_out)
                for (int64_t j = 0; j < n; j++) {
                    c_out[b * cosb + w * (d0 + j)] = cr[j];
                    if (cplx) c_out[b * cosb + 2 * (d0 + j) + 1] = ci[j];
                }
        }
        free(ckpt);
        free(vbuf);
    }
    return failed;
}

/* ---------------------------------------------------------------------------------------------------------
   The HGRU's forget gate and scan input (forget_mode "data") in one pass, and their backward in another,
   instead of the PyTorch ops for the same arithmetic (kernels/hgru_core.py's _gate, _scan_input and
   _gate_input_backward), which make about ten passes over memory each way: a layer's forward and backward
   took 6-7% longer on them (docs/performance.md, sixth pass).

   exp is evaluated inline so that the loops vectorise (libm's exp is a call per element): round x log2(e) to
   an integer k with the 1.5 * 2^(mantissa bits) trick, reduce r = x - k ln2 with ln2 split in two (Cody and
   Waite), take e^r from its Taylor polynomial (|r| <= ln2 / 2: degree 7 leaves 5e-9 relative for float,
   degree 13 4e-18 for double) and scale by 2^k built in the exponent bits. x is clamped to where 2^k is a
   normal number: e^-87 and e^88 stand for underflow and overflow, which the sigmoids below take in their
   stride (1 / (1 + e^88) is as good as 0 for a gate clamped to the smallest normal float). */

static inline float exp_f32(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    const float shifter = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer held in the low bits */
    const float t = x * 1.44269504088896341f + shifter;
    const float k = t - shifter;
    union { float f; int32_t i; } tb = {t}, scale;
    scale.i = (tb.i - 0x4B400000 + 127) << 23;
    const float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    const float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (
        1.0f / 720 + r * (1.0f / 5040)))))));
    return p * scale.f;
}

static inline double exp_f64(double x) {
    x = x < -708.0 ? -708.0 : x > 709.0 ? 709.0 : x;
    const double shifter = 6755399441055744.0;  /* 1.5 * 2^52 */
    const double t = x * 1.4426950408889634074 + shifter;
    const double k = t - shifter;
    union { double f; int64_t i; } tb = {t}, scale;
    scale.i = (tb.i - 0x4338000000000000LL + 1023) << 52;
    const double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;  /* 1/13! */
    p = 1.0 / 479001600.0 + r * p;
    p = 1.0 / 39916800.0 + r * p;
    p = 1.0 / 3628800.0 + r * p;
    p = 1.0 / 362880.0 + r * p;
    p = 1.0 / 40320.0 + r * p;
    p = 1.0 / 5040.0 + r * p;
    p = 1.0 / 720.0 + r * p;
    p = 1.0 / 120.0 + r * p;
    p = 1.0 / 24.0 + r * p;
    p = 1.0 / 6.0 + r * p;
    p = 0.5 + r * p;
    p = 1.0 + r * p;
    p = 1.0 + r * p;
    return p * scale.f;
}

static inline real fast_exp(real x) {
    return sizeof(real) == 4 ? (real)exp_f32((float)x) : (real)exp_f64((double)x);
}

#define GATE_TINY ((real)1.17549435082228750797e-38)  /* the smallest normal float: the least lam, as in PyTorch */

/* One token's row of hgru_gate_input (below); cplx a literal at each call site, so that each loop is
   branch-free and vectorises. */
static inline void gate_input_row(
    int64_t D, const int cplx, const real *restrict pr, const real *restrict zr, const real *restrict gamma,
    real *restrict lr, real *restrict ur)
{
    for (int64_t j = 0; j < D; j++) {
        const real e = fast_exp(-zr[j]), s = 1 / (1 + e), sn = e * s, g = gamma[j];
        const real l = g + (1 - g) * s;
        lr[j] = l < GATE_TINY ? GATE_TINY : l;
        const real om = (1 - g) * sn;
        if (cplx) {
            const real a = pr[2 * j], b = pr[2 * j + 1];
            ur[2 * j] = om * (a / (1 + fast_exp(-a)));
            ur[2 * j + 1] = om * (b / (1 + fast_exp(-b)));
        } else {
            ur[j] = om * (pr[j] / (1 + fast_exp(-pr[j])));
        }
    }
}

/* Per token (N rows) and channel (D), with s = sigmoid(z) and s- = sigmoid(-z) = 1 - s:
       lam = max(gamma + (1 - gamma) s, TINY),  u = (1 - gamma) s- SiLU(p)
   (SiLU of both parts of a complex channel, whose p and u rows hold 2*D SCALARs); where valid (N bytes, or
   NULL for all) is 0: lam = 1, u = 0. gamma (D): the lower bound, zeros for none. Contiguous rows. */
void NAME(hgru_gate_input)(
    int64_t N, int64_t D, int cplx, int threads, const real *p, const real *z, const real *gamma,
    const unsigned char *valid, real *lam, real *u)
{
    const int w = cplx ? 2 : 1;
    int64_t nt = n_threads(N, N * D, threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t row = 0; row < N; row++) {
        const real *zr = z + row * D, *pr = p + row * w * D;
        real *lr = lam + row * D, *ur = u + row * w * D;
        if (valid && !valid[row]) {
            for (int64_t j = 0; j < D; j++) lr[j] = 1;
            for (int64_t j = 0; j < w * D; j++) ur[j] = 0;
        } else if (cplx) {
            gate_input_row(D, 1, pr, zr, gamma, lr, ur);
        } else {
            gate_input_row(D, 0, pr, zr, gamma, lr, ur);
        }
    }
}

/* One token's row of hgru_gate_input_backward (below), accumulating into the chunk's sums sr and sq. */
static inline void gate_input_backward_row(
    int64_t D, const int cplx, const real *restrict pr, const real *restrict zr, const real *restrict gamma,
    real *restrict gr, real *restrict dr, real *restrict sr, real *restrict sq)
{
    for (int64_t j = 0; j < D; j++) {
        const real e = fast_exp(-zr[j]), s = 1 / (1 + e), sn = e * s, g = gamma[j];
        const real l = g + (1 - g) * s;
        const real lam = l < GATE_TINY ? GATE_TINY : l;
        const real om = (1 - g) * sn;
        real d_om;
        if (cplx) {
            const real a = pr[2 * j], b = pr[2 * j + 1];
            const real sa = 1 / (1 + fast_exp(-a)), sb = 1 / (1 + fast_exp(-b));
            const real ga = gr[2 * j], gb = gr[2 * j + 1];
            d_om = a * sa * ga + b * sb * gb;
            gr[2 * j] = om * ga * (sa * (1 + a * (1 - sa)));
            gr[2 * j + 1] = om * gb * (sb * (1 + b * (1 - sb)));
        } else {
            const real a = pr[j], sa = 1 / (1 + fast_exp(-a)), ga = gr[j];
            d_om = a * sa * ga;
            gr[j] = om * ga * (sa * (1 + a * (1 - sa)));
        }
        const real r = dr[j] / lam, q = sn * (r - d_om);
        sr[j] += r;
        sq[j] += q;
        dr[j] = (1 - g) * s * q;
    }
}

/* The backward of hgru_gate_input from du = dL/du (N x w*D, overwritten with dp = dL/dp) and dlog =
   dL/d log lam (N x D, overwritten with dz); both become 0 where not valid:
       d_om = sum over a channel's parts of SiLU(p) du,   dp = (1 - gamma) s- du SiLU'(p),
       r = dlog / lam,  q = s- (r - d_om),  dz = (1 - gamma) s q.
   sums (ceil(N / chunk) x 2 x D): per chunk of rows, the sums over its rows of r and of q, from which the
   caller forms d gamma = (1[gamma >= TINY] - 1) sum r + sum q (the forward clamps lam, so a bound of exactly
   0 has no log term); chunks, not threads, so the result does not depend on the thread count. */
void NAME(hgru_gate_input_backward)(
    int64_t N, int64_t D, int cplx, int threads, int64_t chunk, const real *p, const real *z,
    const real *gamma, const unsigned char *valid, real *du, real *dlog, real *sums)
{
    const int w = cplx ? 2 : 1;
    const int64_t nc = (N + chunk - 1) / chunk;
    int64_t nt = n_threads(nc, N * D, threads);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int64_t c = 0; c < nc; c++) {
        real *sr = sums + c * 2 * D, *sq = sr + D;
        for (int64_t j = 0; j < D; j++) {
            sr[j] = 0;
            sq[j] = 0;
        }
        const int64_t end = (c + 1) * chunk < N ? (c + 1) * chunk : N;
        for (int64_t row = c * chunk; row < end; row++) {
            const real *zr = z + row * D, *pr = p + row * w * D;
            real *gr = du + row * w * D, *dr = dlog + row * D;
            if (valid && !valid[row]) {  /* padding: lam = 1 and u = 0 there, constants */
                for (int64_t j = 0; j < w * D; j++) gr[j] = 0;
                for (int64_t j = 0; j < D; j++) dr[j] = 0;
            } else if (cplx) {
                gate_input_backward_row(D, 1, pr, zr, gamma, gr, dr, sr, sq);
            } else {
                gate_input_backward_row(D, 0, pr, zr, gamma, gr, dr, sr, sq);
            }
        }
    }
}
