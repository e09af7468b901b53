"""keras_csp.amx.deny_amx: a seccomp filter refusing AMX tile state (each test in its own process: the
filter stays for the life of the process it is installed in)."""
import json
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() != "x86_64",
                                reason="deny_amx works on Linux x86-64 only")


def _python(code, timeout=300):
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_deny_amx_refuses_the_tile_request_only():
    out = _python("""
        import ctypes, errno, json, os, threading
        from keras_csp.amx import amx_denied, amx_granted, deny_amx
        libc = ctypes.CDLL(None, use_errno=True)
        ready, done = threading.Event(), threading.Event()
        result = {}
        def worker():  # a thread started before the filter: TSYNC must cover it too
            ready.set()
            done.wait()
            result["thread"] = (libc.syscall(158, 0x1023, 18), ctypes.get_errno())
        t = threading.Thread(target=worker)
        t.start()
        ready.wait()
        assert not amx_denied()
        deny_amx()
        done.set()
        t.join()
        req = libc.syscall(158, 0x1023, 18)  # arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
        req_errno = ctypes.get_errno()
        fs = ctypes.c_uint64(0)
        get = libc.syscall(158, 0x1003, ctypes.byref(fs))  # other arch_prctl calls pass (ARCH_GET_FS)
        from keras_csp import kernels as K
        from keras_csp.benchmark.models import machine_info
        f = K.cpu_features()
        print(json.dumps({"req": req, "errno": req_errno, "thread": result["thread"], "get": get, "fs": fs.value,
                          "granted": amx_granted(), "denied": amx_denied(), "amx_int8": f["amx_int8"],
                          "best": K.best_variant(), "pid_ok": os.getpid() > 0,
                          "machine_denied": machine_info().get("amx_denied")}))
    """)
    r = json.loads(out.strip().splitlines()[-1])
    assert (r["req"], r["errno"]) == (-1, 1)  # EPERM from the filter, whatever the CPU
    assert tuple(r["thread"]) == (-1, 1)
    assert r["get"] == 0 and r["fs"] != 0 and r["pid_ok"]
    assert not r["granted"] and r["denied"] and r["machine_denied"] is True
    assert r["amx_int8"] is False and r["best"] != "amx"


def test_deny_amx_after_the_tiles_were_granted_raises():
    out = _python("""
        from keras_csp import kernels as K
        from keras_csp.amx import amx_granted, deny_amx
        if not K.cpu_features()["amx_int8"]:
            print("no-amx")
        else:
            assert amx_granted()
            try:
                deny_amx()
            except RuntimeError as e:
                print("raised:", e)
    """)
    if out.strip() == "no-amx":
        pytest.skip("this CPU has no AMX (or the kernel refused it): nothing was granted")
    assert out.startswith("raised:") and "already holds AMX tile state" in out


def test_bench_kernels_deny_amx_records_it(tmp_path):
    path = tmp_path / "k.json"
    r = subprocess.run([sys.executable, "-m", "keras_csp", "bench-kernels", "--quick", "--deny-amx",
                        "--json", str(path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(path.read_text())
    assert d["amx_denied"] is True and d["cpu_features"]["amx_int8"] is False
    assert all(row["variant"] != "amx" for row in d["shapes"])
    assert "amx tdpbssd" not in d["peak_loops_gmacs"]


def test_machine_info_records_amx_denied_either_way():
    """The report's machine facts always say whether AMX was denied (as bench-kernels' JSON does)."""
    from keras_csp.benchmark.models import machine_info
    assert machine_info()["amx_denied"] is False  # this process never denied it
