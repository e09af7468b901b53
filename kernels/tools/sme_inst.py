"""Keeps the SME kernel's SVE/SME instructions assembler-independent.

clang 14 (Debian 12; the host side of the aarch64 clang build) knows no SME mnemonics, and the
Android NDK's clang only knows them with flags that would also let the compiler emit SVE/SME code
in the C++ around the assembly. So kernels/src/arm/conv_int8_sme.cc writes every SVE/SME
instruction as a raw `.inst` word with its mnemonic in a comment, and this tool, using binutils'
aarch64 assembler (which knows SME), turns mnemonics into words and checks the words:

  python3 kernels/tools/sme_inst.py FILE            # "smopa ...\\n" lines -> ".inst 0x...\\n"  // smopa ...
  python3 kernels/tools/sme_inst.py --check FILE    # every .inst equals its comment's encoding
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

# Mnemonics of the SVE/SME instructions the kernel uses (base A64 stays as text).
MNEMONICS = ("smstart", "smstop", "zero", "ptrue", "whilelt", "cntw", "ld1w", "ld1b", "st1w", "mova", "smopa",
             "rdsvl")
TEXT_LINE = re.compile(r'^(\s*)"((?:%s)\b[^"\\]*)\\n"(.*)$' % "|".join(MNEMONICS))
INST_LINE = re.compile(r'^(\s*)"\.inst 0x([0-9a-f]{8})\\n"\s*//\s*(.+?)\s*$')


def encode(insns):
    """Encodings of `insns` (strings) by aarch64-linux-gnu-as."""
    with tempfile.TemporaryDirectory() as d:
        src, obj = os.path.join(d, "a.s"), os.path.join(d, "a.o")
        with open(src, "w") as f:
            f.write(".arch armv9-a+sme\n" + "\n".join(insns) + "\n")
        subprocess.run(["aarch64-linux-gnu-as", src, "-o", obj], check=True)
        dump = subprocess.run(["aarch64-linux-gnu-objdump", "-d", obj], check=True, capture_output=True,
                              text=True).stdout
    words = re.findall(r"^\s*[0-9a-f]+:\s+([0-9a-f]{8})\s", dump, re.M)
    if len(words) != len(insns):
        raise SystemExit(f"assembled {len(words)} words for {len(insns)} instructions")
    return words


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    lines = open(a.file).read().split("\n")
    if a.check:
        found = [(i, m.group(2), m.group(3)) for i, line in enumerate(lines) if (m := INST_LINE.match(line))]
        if not found:
            raise SystemExit(f"{a.file}: no .inst lines")
        bad = [(i, w, insn, e) for (i, w, insn), e in zip(found, encode([f[2] for f in found])) if w != e]
        for i, w, insn, e in bad:
            print(f"{a.file}:{i + 1}: .inst 0x{w} but `{insn}` is 0x{e}")
        print(f"{len(found)} .inst words checked, {len(bad)} wrong")
        sys.exit(1 if bad else 0)
    todo = [(i, m) for i, line in enumerate(lines) if (m := TEXT_LINE.match(line))]
    for (i, m), word in zip(todo, encode([m.group(2).strip() for _, m in todo])):
        lines[i] = f'{m.group(1)}".inst 0x{word}\\n"  // {m.group(2).strip()}{m.group(3)}'
    open(a.file, "w").write("\n".join(lines))
    print(f"{len(todo)} instructions encoded")


if __name__ == "__main__":
    main()
