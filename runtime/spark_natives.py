"""Spark's compression codecs load their native libraries from the image, not from /tmp.

snappy-java, zstd-jni and lz4-java unpack their JNI library into ``java.io.tmpdir`` and
load it from there, which fails on the noexec ``/tmp`` services get: snappy and zstd
with an error (no Parquet file of theirs reads, so no saved model whose data they
compress loads), lz4 by falling back to its slower Java code. SparkPython images unpack
the three at build time into ``MOMA_SPARK_NATIVE_DIR`` (``SparkPython.python-packages.sh.j2``);
``options()`` points the driver JVM at them, each in the way its library reads:

==============================  ===========================================================
``libsnappyjava.so``            ``-Dorg.xerial.snappy.lib.path=DIR -Dorg.xerial.snappy.lib.name=...``
``libzstd-jni-<version>.so``    ``-DZstdNativePath=DIR/<file>``
``liblz4-java.so``              the JVM's library path (``spark.driver.extraLibraryPath``):
                                lz4-java tries ``System.loadLibrary`` before unpacking
==============================  ===========================================================
"""

from __future__ import annotations

import glob
import os

SNAPPY = "libsnappyjava.so"
ZSTD_PATTERN = "libzstd-jni-*.so"
LZ4 = "liblz4-java.so"


def options(directory: str | None) -> dict[str, str]:
    """Spark settings loading the libraries found in ``directory`` (none when it is
    unset or missing: a host run unpacks them into its own, exec-mounted, temp dir)."""
    if not directory or not os.path.isdir(directory):
        return {}
    java_options = []
    if os.path.isfile(os.path.join(directory, SNAPPY)):
        java_options += [f"-Dorg.xerial.snappy.lib.path={directory}", f"-Dorg.xerial.snappy.lib.name={SNAPPY}"]
    zstd = sorted(glob.glob(os.path.join(glob.escape(directory), ZSTD_PATTERN)))
    if zstd:
        java_options.append(f"-DZstdNativePath={zstd[-1]}")
    settings = {}
    if java_options:
        settings["spark.driver.extraJavaOptions"] = " ".join(java_options)
    if os.path.isfile(os.path.join(directory, LZ4)):
        settings["spark.driver.extraLibraryPath"] = directory
    return settings
