"""Process-alternating A/B of two builds of keras-csp on int8 conv shapes, or on a whole model.

    cp -r keras_csp /tmp/old/           # the build before the change (python3 setup.py build_ext --inplace)
    ... change, rebuild ...
    cp -r keras_csp /tmp/new/
    python3 bench/ab_builds.py /tmp/old /tmp/new --shapes "128,128,56,1,1;128,32,56,3,1" --rounds 8
    python3 bench/ab_builds.py /tmp/old /tmp/new --model fused.tflite --threads 2 --rounds 8

OLD and NEW are folders that each hold a built `keras_csp` package. Every round runs one fresh
process per side (the order alternates between rounds); a process times each shape (cin, cout,
hw, kernel, stride) as the minimum of 10 timings of >= 20 calls. Printed per shape: both sides'
best times, the median of the per-round ratios old / new (robust to a VM's slow and fast phases,
which last minutes) and the ratio of the best times.

With --model, a process runs the .tflite (keras_csp.runtime, random inputs) `--runs` times after 6
warm-up runs: printed are the model's best latencies and, per fused op, its mean time in our kernels
(Model.custom_op_stats), each with the median paired ratio. Ops the change cannot touch show how
far the two sides' phases still differed: read the change against them (a change to the 7x7
convs that leaves the stem and the pools at 1.06x and moves the 7x7 block 1.06x did nothing).

Why processes and not a switch inside one build: a run-time switch between two code paths leaves
both compiled into one function, and what the change does to the code around them (register
allocation, stores the compiler adds) is the same on both sides of the switch, so it cannot be
seen (a 5 % slowdown of every 1x1 conv went unseen that way).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys


def parse_shapes(text: str) -> list[tuple[int, int, int, int, int]]:
    shapes = []
    for part in text.split(";"):
        fields = [int(v) for v in part.split(",")]
        if len(fields) != 5:
            raise ValueError(f"a shape is cin,cout,hw,kernel,stride; got {part!r}")
        shapes.append(tuple(fields))
    return shapes


def time_shapes(shapes, threads: int, variant: str, deny_amx: bool) -> list[float]:
    """Seconds per call, the minimum of 10 timings, for each shape (run inside one side's process).
    Built from Int8Quant / Int8Conv alone, not keras_csp.benchmark's helpers: OLD may predate them."""
    import time

    import numpy as np

    if deny_amx:
        from keras_csp.amx import deny_amx as deny
        deny()
    from keras_csp import kernels as K

    result = []
    for cin, cout, hw, k, stride in shapes:
        rng = np.random.default_rng(0)
        w = rng.integers(-127, 128, (cout, k, k, cin), dtype=np.int8)
        q = K.Int8Quant(0.05, 3, [0.01] * cout, 0.1, -2, rounding="fp32")
        conv = K.Int8Conv(w, None, q, variant=variant, threads=threads, strides=stride)
        x = rng.integers(-128, 128, (1, hw, hw, cin), dtype=np.int8)
        out = conv(x).copy()
        macs = (hw // stride) ** 2 * cout * cin * k * k
        n = max(20, int(5e7 / macs))
        run = conv._p.conv2d
        for _ in range(n):
            run(x, out, threads)
        best = float("inf")
        for _ in range(10):
            t0 = time.perf_counter()
            for _ in range(n):
                run(x, out, threads)
            best = min(best, (time.perf_counter() - t0) / n)
        result.append(best)
    return result


def time_model(path: str, threads: int, runs: int, deny_amx: bool) -> dict:
    """Best latency (s) and each fused op's mean time (s) over `runs` runs after 6 untimed ones, on
    `bench --isolated`'s inputs (keras_csp.benchmark.models.time_alone; inside one side's process)."""
    if deny_amx:
        from keras_csp.amx import deny_amx as deny
        deny()
    from keras_csp.benchmark.models import time_alone

    r = time_alone("fused", path, threads, runs, 5)
    ops = [[f"{s['op']} {s['detail']}", s["total_ms"] / 1e3 / s["calls"]] for s in r["fused_ops"] if s["calls"]]
    return {"best": min(r["latencies_ms"]) / 1e3, "ops": ops}


def _paired(old: list[float], new: list[float]) -> str:
    median = statistics.median(o / n for o, n in zip(old, new))
    return f"new speed: median paired {median:.3f}x  best {min(old) / min(new):.3f}x"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--shapes", help='"cin,cout,hw,kernel,stride;..."')
    what.add_argument("--model", help="a .tflite file (fused or not) timed whole, per fused op")
    ap.add_argument("--runs", type=int, default=30, help="--model: timed runs per process")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--variant", default="auto", help="kernel variant (auto: the best this CPU has)")
    ap.add_argument("--amx", action="store_true", help="leave AMX allowed (default: denied, as bench --deny-amx)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    model = os.path.abspath(args.model) if args.model else None
    shapes = None if model else parse_shapes(args.shapes)
    if args.child:
        print(json.dumps(time_model(model, args.threads, args.runs, not args.amx) if model else
                         time_shapes(shapes, args.threads, args.variant, not args.amx)))
        return 0
    what = ["--model", model, "--runs", str(args.runs)] if model else ["--shapes", args.shapes]
    times = {"old": [], "new": []}
    for r in range(args.rounds):
        for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
            folder = os.path.abspath(getattr(args, side))
            env = dict(os.environ, PYTHONPATH=folder, OPENBLAS_NUM_THREADS="1")
            cmd = [sys.executable, os.path.abspath(__file__), args.old, args.new, *what,
                   "--threads", str(args.threads), "--variant", args.variant, "--child"] + (["--amx"] if args.amx else [])
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=folder)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                raise SystemExit(f"the {side} side failed (folder {folder})")
            times[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    if model:
        old = [t["best"] for t in times["old"]]
        new = [t["best"] for t in times["new"]]
        print(f"{'model':48s} t{args.threads}: old {min(old) * 1e3:8.3f} ms  new {min(new) * 1e3:8.3f} ms  "
              f"{_paired(old, new)}")
        labels = [label for label, _ in times["old"][0]["ops"]]
        if any([label for label, _ in t["ops"]] != labels for side in times.values() for t in side):
            raise SystemExit("the two builds fused different ops: compare the model's line only")
        for j, label in enumerate(labels):
            old = [t["ops"][j][1] for t in times["old"]]
            new = [t["ops"][j][1] for t in times["new"]]
            print(f"{label[:48]:48s} t{args.threads}: old {min(old) * 1e6:8.1f} us  new {min(new) * 1e6:8.1f} us  "
                  f"{_paired(old, new)}")
        return 0
    for j, s in enumerate(shapes):
        old = [t[j] for t in times["old"]]
        new = [t[j] for t in times["new"]]
        label = ",".join(str(v) for v in s)
        print(f"{label:16s} t{args.threads}: old {min(old) * 1e6:8.1f} us  new {min(new) * 1e6:8.1f} us  "
              f"{_paired(old, new)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
