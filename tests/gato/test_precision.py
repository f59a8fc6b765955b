"""train.dtype = "auto": bf16 only where the hardware computes it natively."""

import pytest
import torch

from gato import precision
from gato.config import Precision, load_run_config
from gato.metrics import read_metrics
from gato.train import train

from ..conftest import CONFIGS

X86_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2\n\nprocessor\t: 1\nflags\t\t: avx2\n"
X86_BF16 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(
    "cpuinfo, native", [(X86_AVX2, False), (X86_BF16, True), (ARM_BF16, True), ("", False)]
)
def test_cpu_flags_read_x86_and_arm_cpuinfo(tmp_path, cpuinfo, native):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    flags = precision.cpu_flags(path)
    assert precision.native_bf16("cpu", flags) is native
    assert precision.resolve(Precision.AUTO, "cpu", flags) == (
        Precision.BF16 if native else Precision.FP32
    )


def test_missing_cpuinfo_means_no_flags(tmp_path):
    assert precision.cpu_flags(tmp_path / "absent") == frozenset()


def test_explicit_dtypes_are_kept_whatever_the_cpu():
    for dtype in (Precision.FP32, Precision.BF16):
        assert precision.resolve(dtype, "cpu", frozenset()) == dtype
        assert precision.resolve(dtype, "cpu", frozenset({"avx512_bf16"})) == dtype


def _losses(text_data, run, dtype):
    cfg = load_run_config(
        str(CONFIGS / "debug.toml"),
        [
            f"data.dir={text_data}",
            "data.mixture.0.kind=captions",
            "data.mixture.0.path=captions.npz",
            "data.mixture.0.task=captions2",
            "train.steps=3",
            "train.eval_interval=0",
            f'train.dtype="{dtype}"',
        ],
    )
    assert train(cfg, run, progress=False).status == "done"
    return [r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]


@pytest.mark.parametrize("flags, same_as", [({"avx2"}, "fp32"), ({"amx_bf16"}, "bf16")])
def test_auto_trains_exactly_as_the_dtype_the_cpu_flags_pick(
    text_data, tmp_path, monkeypatch, capfd, flags, same_as
):
    monkeypatch.setattr(precision, "cpu_flags", lambda *a: frozenset(flags))
    auto = _losses(text_data, tmp_path / "auto", "auto")
    assert f"dtype auto -> {same_as}" in capfd.readouterr().err
    assert auto == _losses(text_data, tmp_path / same_as, same_as)
    other = "bf16" if same_as == "fp32" else "fp32"
    assert auto != _losses(text_data, tmp_path / other, other)  # the test can tell them apart


def test_autocast_runs_matmuls_in_bf16_only_for_a_bf16_run():
    a = torch.ones(2, 2)
    with precision.autocast(Precision.BF16, "cpu"):
        assert (a @ a).dtype == torch.bfloat16
    with precision.autocast(Precision.FP32, torch.device("cpu")):
        assert (a @ a).dtype == torch.float32
