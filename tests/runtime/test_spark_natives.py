"""Where the SparkPython JVM finds the codecs' native libraries (no JVM here; a container
with a noexec /tmp loads them in tests/integration/test_spark_service.py)."""

from __future__ import annotations

from pathlib import Path

from runtime.spark_natives import options


def test_each_library_found_is_pointed_at_the_way_its_loader_reads(tmp_path: Path):
    for name in ("libsnappyjava.so", "libzstd-jni-1.5.7-7.so", "liblz4-java.so"):
        (tmp_path / name).write_bytes(b"\x7fELF")

    assert options(str(tmp_path)) == {
        "spark.driver.extraJavaOptions": f"-Dorg.xerial.snappy.lib.path={tmp_path} "
                                         f"-Dorg.xerial.snappy.lib.name=libsnappyjava.so "
                                         f"-DZstdNativePath={tmp_path}/libzstd-jni-1.5.7-7.so",
        "spark.driver.extraLibraryPath": str(tmp_path),
    }


def test_only_the_libraries_present_are_named(tmp_path: Path):
    (tmp_path / "liblz4-java.so").write_bytes(b"\x7fELF")

    assert options(str(tmp_path)) == {"spark.driver.extraLibraryPath": str(tmp_path)}


def test_without_the_directory_spark_unpacks_them_itself(tmp_path: Path):
    assert options(None) == {} and options("") == {} and options(str(tmp_path / "missing")) == {}
    assert options(str(tmp_path)) == {}
