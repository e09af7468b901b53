"""Runs a fused .tflite in the stock ai_edge_litert Interpreter with a given keras-csp delegate
library, on deterministic int8 inputs, and saves the outputs (.npy). Needs only numpy and
ai-edge-litert, so it runs under the aarch64 Python of `run_aarch64_python.sh` (qemu) as well as
on the host: the two runs' outputs are compared by tests/test_delegate.py.

usage: stock_delegate_run.py DELEGATE.so MODEL.tflite OUT.npy [--resolver builtin|auto] [--samples N]
"""
import argparse

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--resolver", choices=["builtin", "auto"], default="builtin")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--litert-version", default="2.3.0")
    a = ap.parse_args()
    d = load_delegate(a.library, {"litert_version": a.litert_version})
    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if a.resolver == "builtin" else OpResolverType.AUTO
    it = Interpreter(model_path=a.model, experimental_delegates=[d], experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rng = np.random.default_rng(0)
    outs = []
    for _ in range(a.samples):
        info = np.iinfo(inp["dtype"])
        it.set_tensor(inp["index"], rng.integers(info.min, info.max + 1, size=inp["shape"]).astype(inp["dtype"]))
        it.invoke()
        outs.append(it.get_tensor(out["index"]).copy())
    np.save(a.out, np.stack(outs))
    print(f"ran {a.samples} inputs: {a.model}")


if __name__ == "__main__":
    main()
