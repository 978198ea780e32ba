"""The native CPU scan kernels (kernels/cpu_native.c): built with the system C compiler on first use, loaded
through ctypes, and skipped cleanly where they cannot be built.

    python -m kernels.cpu_native          # build now (``make install`` does) and print what is used

The PyTorch scan (kernels/cpu_scan.py) stays the fallback and the reference the native one is tested
against. ``HGRN_CPU_NATIVE`` chooses: ``auto`` (default: native where it builds), ``off`` (never) or
``require`` (fail with the compiler's message instead of falling back). The library is cached under
``HGRN_NATIVE_CACHE`` (default ``~/.cache/hgrn-bench``), keyed by the source, the compiler command and the
CPU's instruction-set flags, so a cache shared between machines never runs code built for another CPU.

Why ctypes and plain C, not a PyTorch C++ extension: the C file compiles in under a second against no
headers but libc's, where a torch extension takes a minute per build. The OpenMP runtime it links is the
one PyTorch has already loaded (same soname), so both share one thread pool.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from typing import Optional

import torch

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_native.c")
MODES = ("auto", "off", "require")
GATE_REAL, GATE_PHASE, GATE_COMPLEX = 0, 1, 2
_DTYPES = {torch.float32: "_f32", torch.float64: "_f64"}

_lock = threading.Lock()
_state: dict[str, object] = {}


class NativeUnavailable(RuntimeError):
    """The native kernels were required (HGRN_CPU_NATIVE=require) but could not be built or loaded."""


def mode() -> str:
    value = os.environ.get("HGRN_CPU_NATIVE", "auto").strip().lower()
    if value not in MODES:
        raise ValueError(f"HGRN_CPU_NATIVE={value!r}: choose one of {', '.join(MODES)}")
    return value


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _command(compiler: str, out: str, scalar: str, suffix: str) -> list[str]:
    # -fno-trapping-math: no floating-point traps are relied on, and without it GCC keeps the selects of the
    # gate pass as branches, so its loops do not vectorise; -ffp-contract=fast: fused multiply-adds (the gate
    # pass's polynomials take a fifth less time; results move in the last bit, within every test's tolerance)
    flags = ["-O3", "-fPIC", "-fopenmp", "-std=c99", "-fno-trapping-math", "-ffp-contract=fast", f"-DSCALAR={scalar}",
             f"-DSUFFIX={suffix}"]
    if _cpu_flags() and platform.machine() in ("x86_64", "AMD64"):
        flags.append("-march=native")  # safe: the cache key holds this CPU's flags
    return [compiler, *flags, "-c", SOURCE, "-o", out]


def _compiler() -> Optional[str]:
    """The C compiler: $CC if set (None if it does not exist), else cc or gcc on the PATH."""
    if os.environ.get("CC"):
        return shutil.which(os.environ["CC"])
    return shutil.which("cc") or shutil.which("gcc")


def _build(cache: str) -> str:
    """Compile the two precisions into one shared library in ``cache`` (reused when present); its path."""
    compiler = _compiler()
    if compiler is None:
        where = f"CC={os.environ['CC']} does not exist" if os.environ.get("CC") else "no cc or gcc on the PATH"
        raise NativeUnavailable(f"no C compiler ({where}); install gcc or set CC")
    with open(SOURCE, "rb") as f:
        source = f.read()
    recipe = "\0".join([compiler, platform.machine(), _cpu_flags(), " ".join(_command(compiler, "", "", ""))])
    key = hashlib.sha256(source + recipe.encode()).hexdigest()[:16]
    path = os.path.join(cache, f"hgrn_cpu_native-{key}.so")
    if os.path.exists(path):
        return path
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:  # build beside the target, then an atomic rename
        objects = []
        for scalar, suffix in (("float", "_f32"), ("double", "_f64")):
            obj = os.path.join(tmp, f"native{suffix}.o")
            done = subprocess.run(_command(compiler, obj, scalar, suffix), capture_output=True, text=True)
            if done.returncode != 0:
                raise NativeUnavailable(f"compiling {SOURCE} failed:\n{done.stderr.strip()[:2000]}")
            objects.append(obj)
        lib = os.path.join(tmp, "lib.so")
        done = subprocess.run([compiler, "-shared", "-fopenmp", *objects, "-o", lib], capture_output=True, text=True)
        if done.returncode != 0:
            raise NativeUnavailable(f"linking the native scan failed:\n{done.stderr.strip()[:2000]}")
        os.replace(lib, path)
    return path


def _load() -> ctypes.CDLL:
    cache = os.environ.get("HGRN_NATIVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hgrn-bench")
    lib = ctypes.CDLL(_build(cache))
    i64, ptr, c_int = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
    for suffix in _DTYPES.values():
        fwd = getattr(lib, "hgrn_scan_forward" + suffix)
        fwd.argtypes = [i64, i64, i64, c_int, c_int, c_int, c_int, ptr, i64, i64, ptr, i64, i64, ptr, ptr, i64,
                        ptr, i64, i64]
        fwd.restype = None
        bwd = getattr(lib, "hgrn_scan_backward" + suffix)
        bwd.argtypes = [i64, i64, i64, c_int, c_int, c_int, c_int, ptr, i64, i64, ptr, i64, i64, ptr, ptr, i64,
                        i64, ptr, i64, i64, ptr, i64, i64, ptr, i64, i64, ptr, ptr, i64, ptr, i64, ptr, i64]
        bwd.restype = c_int
        gate = getattr(lib, "hgru_gate_input" + suffix)
        gate.argtypes = [i64, i64, c_int, c_int, ptr, ptr, ptr, ptr, ptr, ptr]
        gate.restype = None
        gate_bwd = getattr(lib, "hgru_gate_input_backward" + suffix)
        gate_bwd.argtypes = [i64, i64, c_int, c_int, i64, ptr, ptr, ptr, ptr, ptr, ptr, ptr]
        gate_bwd.restype = None
    return lib


def library() -> Optional[ctypes.CDLL]:
    """The loaded kernels, or None (HGRN_CPU_NATIVE=off, or they cannot be built: see ``status()``)."""
    choice = mode()
    if choice == "off":
        return None
    with _lock:
        if "lib" not in _state:
            try:
                _state["lib"], _state["error"] = _load(), None
            except (NativeUnavailable, OSError, subprocess.SubprocessError) as err:
                _state["lib"], _state["error"] = None, f"{type(err).__name__}: {err}"
    if _state["lib"] is None and choice == "require":
        raise NativeUnavailable(f"HGRN_CPU_NATIVE=require, but the native CPU scan is unavailable: {_state['error']}")
    return _state["lib"]  # type: ignore[return-value]


@torch.compiler.assume_constant_result  # torch.compile takes the answer as a constant (no lock in the graph)
def available() -> bool:
    return library() is not None


def status() -> str:
    """One line for logs and benchmarks: which CPU scan runs and, if not the native one, why."""
    if mode() == "off":
        return "PyTorch CPU scan (HGRN_CPU_NATIVE=off)"
    if library() is not None:
        return "native CPU scan (kernels/cpu_native.c)"
    return f"PyTorch CPU scan (native unavailable: {str(_state['error']).splitlines()[0]})"


# ---------------------------------------------------------------------------------------------------------
# Calls. Each tensor argument is a (B, L, D) view with channels contiguous; complex tensors go through their
# real view. Strides are passed in scalars.


def _scalars(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t) if t.is_complex() else t


def _strides(t: torch.Tensor) -> tuple[int, int]:
    r = _scalars(t)
    return r.stride(0), r.stride(1)


def supports(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether these (B, L, D) views can go to the kernels: CPU, float32/64 (or their complex types), one
    real precision, channels contiguous (interleaved pairs for complex)."""
    real = None
    for t in tensors:
        if t is None:
            continue
        if t.device.type != "cpu" or t.dim() != 3:
            return False
        r = _scalars(t)
        if r.dtype not in _DTYPES or (real is not None and r.dtype != real):
            return False
        real = r.dtype
        if t.shape[2] > 1 and r.stride(2) != (2 if t.is_complex() else 1):
            return False
        if t.is_complex() and r.stride(3) != 1:
            return False
    return real is not None


def _fn(name: str, dtype: torch.dtype):
    lib = library()
    if lib is None:
        raise NativeUnavailable(f"native CPU scan unavailable: {status()}")
    return getattr(lib, name + _DTYPES[dtype.to_real()])


def _ptr(t: Optional[torch.Tensor]) -> Optional[int]:
    return None if t is None else t.data_ptr()


STORE = {"h": 0, "add": 1, "v": 2}


def scan_forward(x: torch.Tensor, gate: torch.Tensor, out: torch.Tensor, *, kind: int, reverse: bool = False,
                 phase: Optional[torch.Tensor] = None, h0: Optional[torch.Tensor] = None,
                 store: str = "h") -> torch.Tensor:
    """h_t = gate_t * h_{t-1} + x_t over dim 1, stored into ``out`` as ``store`` says: "h" the states, "add"
    out += h, "v" the gated previous states gate_t * h_{t-1} (what ``scan_backward`` takes). ``phase``
    (D, 2) cos/sin for kind GATE_PHASE; ``h0`` (B, D) the state entering (channels contiguous). No autograd."""
    B, L, D = x.shape
    if phase is not None:
        phase = phase.contiguous()
    h0_sb = 0 if h0 is None else _scalars(h0).stride(0)
    _fn("hgrn_scan_forward", out.dtype)(
        B, L, D, kind, int(reverse), STORE[store], torch.get_num_threads(),
        _ptr(x), *_strides(x), _ptr(gate), *_strides(gate), _ptr(phase), _ptr(h0), h0_sb, _ptr(out), *_strides(out))
    return out


def _row_arg(t: Optional[torch.Tensor]) -> tuple[Optional[int], int]:
    """(pointer, row stride) of an optional (B, D) state or carry."""
    return (None, 0) if t is None else (_ptr(t), _scalars(t).stride(0))


def scan_backward(dh: torch.Tensor, gate: torch.Tensor, v: Optional[torch.Tensor], du: torch.Tensor, *, kind: int,
                  reverse: bool, init: bool, phase: Optional[torch.Tensor] = None,
                  dlog: Optional[torch.Tensor] = None, dtheta: Optional[torch.Tensor] = None,
                  x: Optional[torch.Tensor] = None, h0: Optional[torch.Tensor] = None,
                  carry_in: Optional[torch.Tensor] = None, carry_out: Optional[torch.Tensor] = None) -> None:
    """One scan's backward in one sweep (see cpu_native.c) from the gradient dh reaching its states and its
    gated previous states v (``scan_forward(..., store="v")``), or, with v None, the scan's input ``x``, from
    which the kernel recomputes v a chunk of steps at a time (no (B, L, D) buffer): du (+)= G,
    dlog (+)= Re conj(v) G and, for complex scans, dtheta (B, D) = per-row sums of Im conj(v) G. ``init``
    writes instead of adding.

    For one piece of a longer sequence ((B, D) each, channels contiguous; None: zero): ``h0`` the state
    entering the piece in the scan's direction, ``carry_in`` conj(a) G from the step after the piece, and
    ``carry_out`` receives the same for the step before it (the next piece's ``carry_in``)."""
    B, L, D = dh.shape
    if (v is None) == (x is None):
        raise ValueError("scan_backward: give either the gated previous states v or the scan's input x")
    if phase is not None:
        phase = phase.contiguous()
    dl = (0, 0) if dlog is None else _strides(dlog)
    vs = (0, 0) if v is None else _strides(v)
    xs = (0, 0) if x is None else _strides(x)
    failed = _fn("hgrn_scan_backward", du.dtype)(
        B, L, D, kind, int(reverse), int(init), torch.get_num_threads(),
        _ptr(dh), *_strides(dh), _ptr(gate), *_strides(gate), _ptr(phase), _ptr(v), *vs, _ptr(x), *xs,
        _ptr(du), *_strides(du), _ptr(dlog), *dl, _ptr(dtheta),
        *_row_arg(h0), *_row_arg(carry_in), *_row_arg(carry_out))
    if failed:
        raise MemoryError("native scan backward: could not allocate its per-thread buffers")


GATE_SUM_ROWS = 256  # rows per partial sum of the gate backward: fixed, so results do not depend on threads


def gate_input_supports(p: torch.Tensor, z: Optional[torch.Tensor], gamma: Optional[torch.Tensor]) -> bool:
    """Whether ``gate_input`` takes these: CPU, contiguous, one precision (float32/64), z given."""
    if z is None or p.device.type != "cpu" or p.dtype not in _DTYPES:
        return False
    return all(t is None or (t.dtype == p.dtype and t.device.type == "cpu" and t.is_contiguous())
               for t in (p, z, gamma))


def _gate_args(p: torch.Tensor, z: torch.Tensor, gamma: Optional[torch.Tensor], valid: Optional[torch.Tensor]):
    N, D = z.numel() // z.shape[-1], z.shape[-1]
    cplx = p.shape[-1] == 2 * D
    if not cplx and p.shape[-1] != D:
        raise ValueError(f"gate_input: p has {p.shape[-1]} channels, z {D}: p must have D or 2D")
    if p.shape[:-1] != z.shape[:-1]:
        raise ValueError(f"gate_input: p {tuple(p.shape)} and z {tuple(z.shape)} differ before the channel axis")
    if gamma is None:
        gamma = torch.zeros(D, dtype=p.dtype)
    elif gamma.shape != (D,):
        raise ValueError(f"gate_input: gamma has shape {tuple(gamma.shape)}; it must be ({D},), one per channel")
    if valid is not None:
        if valid.numel() != N:
            raise ValueError(f"gate_input: valid has {valid.numel()} entries for {N} rows")
        valid = valid.contiguous().to(torch.uint8)
    return N, D, cplx, gamma, valid


def gate_input(p: torch.Tensor, z: torch.Tensor, gamma: Optional[torch.Tensor],
               valid: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(lam, u) of the HGRU in one pass (cpu_native.c ``hgru_gate_input``): lam = max(gamma + (1 - gamma)
    sigmoid(z), tiny) like z, u = (1 - gamma) sigmoid(-z) SiLU(p) like p (p holds D real or 2D interleaved
    complex channels per token); lam = 1 and u = 0 where ``valid`` (one bool per token) is False."""
    N, D, cplx, gamma, valid = _gate_args(p, z, gamma, valid)
    lam, u = torch.empty_like(z), torch.empty_like(p)
    _fn("hgru_gate_input", p.dtype)(N, D, int(cplx), torch.get_num_threads(), _ptr(p), _ptr(z), _ptr(gamma),
                                    _ptr(valid), _ptr(lam), _ptr(u))
    return lam, u


def gate_input_backward(p: torch.Tensor, z: torch.Tensor, gamma: Optional[torch.Tensor],
                        valid: Optional[torch.Tensor], du: torch.Tensor, dlog: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """(dp, dz, d gamma) of ``gate_input`` from du (like p) and dlog = dL/d log lam (like z), in one pass:
    dp is written over du and dz over dlog (both contiguous). d gamma is None without a gamma."""
    if not (du.is_contiguous() and dlog.is_contiguous() and du.dtype == dlog.dtype == p.dtype):
        raise ValueError("gate_input_backward: du and dlog must be contiguous and in p's dtype")
    given = gamma is not None
    N, D, cplx, gamma, valid = _gate_args(p, z, gamma, valid)
    sums = torch.empty((N + GATE_SUM_ROWS - 1) // GATE_SUM_ROWS, 2, D, dtype=p.dtype)
    _fn("hgru_gate_input_backward", p.dtype)(
        N, D, int(cplx), torch.get_num_threads(), GATE_SUM_ROWS, _ptr(p), _ptr(z), _ptr(gamma), _ptr(valid),
        _ptr(du), _ptr(dlog), _ptr(sums))
    if not given:
        return du, dlog, None
    sum_r, sum_q = sums.sum(0)
    live = (gamma >= torch.finfo(torch.float32).tiny).to(p.dtype)  # a bound of exactly 0 has no log term
    return du, dlog, (live - 1) * sum_r + sum_q


def main() -> None:
    # never fails: without a compiler the PyTorch scan runs instead, and this line says why
    print(status())


if __name__ == "__main__":
    main()
