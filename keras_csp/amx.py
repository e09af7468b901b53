"""Keep AMX tiles away from this process (Linux x86-64): what an AVX-512 VNNI CPU without AMX runs.

Linux hands AMX tile state to a process only when it asks (``arch_prctl(ARCH_REQ_XCOMP_PERM)``);
XNNPACK and keras-csp's kernels both ask, and both fall back to their AVX-512 VNNI code when refused.
:func:`deny_amx` installs a seccomp filter that refuses that request, in every thread of the process,
so an AMX Xeon times both sides as an Ice Lake / Cascade Lake class CPU would run them (same
instructions; the core's microarchitecture stays the Xeon's). ``bench``, ``bench-kernels`` and
``run`` take it as ``--deny-amx``.
"""

import ctypes
import platform
import struct
import sys

_ARCH_GET_XCOMP_PERM = 0x1022
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_NR_ARCH_PRCTL = 158  # x86-64
_NR_SECCOMP = 317
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1  # every thread of the process, also those already running
_PR_SET_NO_NEW_PRIVS = 38
_AUDIT_ARCH_X86_64 = 0xC000003E
_EPERM = 1

# classic BPF over struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];}
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000


def _stmt(code, k):
    return struct.pack("HBBI", code, 0, 0, k)


def _jump(k, if_true, if_false):
    return struct.pack("HBBI", _JEQ_K, if_true, if_false, k)


def _filter_program() -> bytes:
    """arch_prctl(ARCH_REQ_XCOMP_PERM, ...) fails with EPERM; every other system call passes."""
    return b"".join([
        _stmt(_LD_W_ABS, 4), _jump(_AUDIT_ARCH_X86_64, 0, 5),    # seccomp_data.arch
        _stmt(_LD_W_ABS, 0), _jump(_NR_ARCH_PRCTL, 0, 3),         # seccomp_data.nr
        _stmt(_LD_W_ABS, 16), _jump(_ARCH_REQ_XCOMP_PERM, 0, 1),  # low half of args[0]
        _stmt(_RET_K, _SECCOMP_RET_ERRNO | _EPERM),
        _stmt(_RET_K, _SECCOMP_RET_ALLOW),
    ])


_denied = False


def amx_denied() -> bool:
    """Whether deny_amx() ran in this process (benchmark reports record it with the machine facts)."""
    return _denied


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _libc():
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(f"deny_amx works on Linux x86-64 only (this is {sys.platform} {platform.machine()})")
    return ctypes.CDLL(None, use_errno=True)


def amx_granted() -> bool:
    """Whether this process already holds AMX tile state (asked for by keras-csp's kernels or XNNPACK)."""
    libc = _libc()
    mask = ctypes.c_uint64(0)
    if libc.syscall(_NR_ARCH_PRCTL, _ARCH_GET_XCOMP_PERM, ctypes.byref(mask)) != 0:
        return False  # kernels before 5.16 know no AMX permission: no tile state either
    return bool(mask.value >> _XFEATURE_XTILEDATA & 1)


def deny_amx() -> None:
    """Refuse AMX tile state to this process from now on (see the module docstring).

    Call it before anything runs an int8 kernel: Linux cannot take the state back, so a process that
    already holds it raises RuntimeError. On a CPU without AMX it changes nothing."""
    global _denied
    libc = _libc()
    if amx_granted():
        raise RuntimeError("this process already holds AMX tile state (an int8 kernel or LiteRT ran before): "
                           "call deny_amx() first, before keras_csp.kernels or LiteRT run anything")
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    program = _filter_program()
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.syscall(_NR_SECCOMP, _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(fprog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER) failed: AMX could not be denied")
    _denied = True
