"""core/runtime.py: one Cancelled, one write-then-rename, one device choice."""

import pytest

from insar_gnss_3d.core import runtime


def test_every_cancelled_is_the_one_exception():
    from insar_gnss_3d.core import benchmark, infer, prepare, train

    for alias in (prepare.ExtractionCancelled, infer.InferenceCancelled, train.TrainingCancelled,
                  benchmark.BenchmarkCancelled):
        assert alias is runtime.Cancelled
    assert train.select_device is runtime.select_device


def test_check_canceled_and_report():
    seen = []
    runtime.report(lambda f, m: seen.append((f, m)), 1, "done")
    runtime.report(None, 0.5)
    assert seen == [(1.0, "done")]
    runtime.check_canceled(None)
    runtime.check_canceled(lambda: False)
    with pytest.raises(runtime.Cancelled, match="no output"):
        runtime.check_canceled(lambda: True)


def test_atomic_path_renames_only_a_finished_file(tmp_path):
    path = str(tmp_path / "table.csv")
    with open(path, "w") as f:
        f.write("old")
    with pytest.raises(runtime.Cancelled):
        with runtime.AtomicPath(path) as part, open(part, "w") as f:
            f.write("half")
            raise runtime.Cancelled("stop")
    assert open(path).read() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
    with runtime.AtomicPath(path) as part, open(part, "w") as f:
        assert part == path + ".part"
        f.write("new")
    assert open(path).read() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_select_device():
    import torch

    assert runtime.select_device("cpu") == torch.device("cpu")
    assert runtime.select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        runtime.select_device("tpu")
    assert runtime.DEVICES == ("auto", "cpu", "cuda")


def test_cpu_native_bf16_reads_the_cpu_flags(tmp_path):
    zen4 = tmp_path / "zen4"
    zen4.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n")
    haswell = tmp_path / "haswell"
    haswell.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    sapphire = tmp_path / "sapphire"
    sapphire.write_text("flags\t\t: avx512f amx_tile amx_bf16\n")
    assert runtime.cpu_native_bf16(str(zen4))
    assert runtime.cpu_native_bf16(str(sapphire))
    assert not runtime.cpu_native_bf16(str(haswell))
    assert not runtime.cpu_native_bf16(str(tmp_path / "no such file"))
