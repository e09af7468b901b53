"""Build script: the Python package plus the pybind11 extensions compiled from kernels/.

Every kernel variant lives in its own file; x86/ARM variants guard themselves with
`#if` on the target architecture and enable their ISA per file with `#pragma GCC target`,
so one set of compiler flags builds all of them and run-time dispatch picks one.
"""
import os
import sys
from glob import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import Extension, find_packages, setup
from setuptools.command.build_clib import build_clib

# Compile each library's / module's files on every core (KERAS_CSP_BUILD_JOBS=N to limit).
ParallelCompile("KERAS_CSP_BUILD_JOBS", default=0).install()

KERNEL_SOURCES = sorted(glob("kernels/src/**/*.cc", recursive=True))
# setuptools does not scan #includes: without `depends` a header-only change (sweep.h, the
# requantization headers) left a stale extension behind.
KERNEL_HEADERS = sorted(glob("kernels/**/*.h", recursive=True))

# The kernels, compiled once into a static library that the three modules below link. Each module
# used to compile them itself: three times the build, and under `build_ext -j 2` two modules wrote
# the same object files at once (one module was linked without ConvInt8Avx512Vnni). Hidden
# visibility: the delegate library exports its C entry points only.
KERNEL_LIBRARY = (
    "keras_csp_kernels",
    {
        "sources": KERNEL_SOURCES,
        "include_dirs": ["kernels/include"],
        "obj_deps": {"": KERNEL_HEADERS},
        "cflags": ["-O3", "-g0", "-std=c++17", "-fPIC", "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
    },
)

# A module is relinked when a kernel changes (setuptools does not look at the library's date).
KERNEL_DEPENDS = KERNEL_HEADERS + KERNEL_SOURCES

ext_modules = [
    Pybind11Extension(
        "keras_csp._kernels",
        ["kernels/python/kernels_module.cc"],
        include_dirs=["kernels/include"],
        depends=KERNEL_DEPENDS,
        cxx_std=17,
        extra_compile_args=["-O3"],
    ),
    Pybind11Extension(
        "keras_csp._runtime",
        sorted(glob("kernels/runtime/*.cc")) + ["kernels/python/runtime_module.cc"],
        include_dirs=["kernels/include", "kernels/runtime"],
        depends=KERNEL_DEPENDS,
        cxx_std=17,
        extra_compile_args=["-O3"],
        libraries=["dl"],
    ),
    # The TFLite delegate for stock interpreters (keras_csp.delegate(), Android's
    # KerasCspDelegate): a plain shared library, not a Python module; only its C entry points
    # are exported.
    Extension(
        "keras_csp.libkeras_csp_delegate",
        [f"kernels/runtime/{n}.cc" for n in ("delegate", "custom_ops", "flexbuffer_reader", "litert_lib")],
        include_dirs=["kernels/include", "kernels/runtime"],
        depends=KERNEL_DEPENDS,
        extra_compile_args=["-O3", "-g0", "-std=c++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden"],
        libraries=["dl"],
    ),
]

DELEGATE_LIBRARY = "keras_csp.libkeras_csp_delegate"


class BuildClib(build_clib):
    """`pip install -e` builds in a temporary directory: there the kernel library's objects go to the
    checkout's build/ instead, where a later `pip install .` of the same checkout finds them up to
    date (tests/test_package_install.py after scripts/install.sh: its build 156 -> 73 s on 2 cores)."""

    def finalize_options(self):
        super().finalize_options()
        if getattr(self.distribution.get_command_obj("build_ext"), "editable_mode", False):
            self.build_temp = self.build_clib = os.path.join(
                "build", f"temp.{self.get_finalized_command('build').plat_name}-{sys.implementation.cache_tag}")


class BuildExt(build_ext):
    """pybind11's build_ext, but the delegate library keeps a plain name (no ABI tag), and the
    kernel library is built first (`build` runs build_clib, `build_ext --inplace` alone would not)."""

    def run(self):
        if not self.distribution.have_run.get("build_clib"):
            # The library goes with this build's objects: a build with its own -t (hardening/sanitize.sh's
            # ASan build) must not share it with the plain build in build/.
            clib = self.distribution.get_command_obj("build_clib")
            clib.ensure_finalized()
            clib.build_temp = clib.build_clib = self.build_temp
        self.run_command("build_clib")
        super().run()

    def get_ext_filename(self, fullname):
        # Called with the full dotted name and, by get_ext_fullpath, with its last part alone.
        if fullname in (DELEGATE_LIBRARY, DELEGATE_LIBRARY.rpartition(".")[2]):
            return fullname.replace(".", "/") + ".so"
        return super().get_ext_filename(fullname)

setup(
    name="keras-csp",
    version="0.1.0",
    description="Cross Stage Partial networks (CSPNet) for Keras, int8 TFLite and fused mobile kernels",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_csp", "keras_csp.*"]),
    libraries=[KERNEL_LIBRARY],
    ext_modules=ext_modules,
    cmdclass={"build_clib": BuildClib, "build_ext": BuildExt},
    install_requires=[
        "numpy",
        "tensorflow>=2.16,<2.22",
        "tf_keras>=2.16,<2.22",
        "tensorflow-model-optimization==0.8.1",
        "ai-edge-litert==2.3.0",
        "flatbuffers>=24",
        "click>=8",
        "matplotlib",
        "tqdm",
        "scikit-learn",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "hypothesis"]},
    entry_points={"console_scripts": ["keras-csp=keras_csp.cli:main"]},
)
