"""Throughput measurements as Markdown: ``scripts/benchmark.py`` and ``scripts/profile_step.py`` (Chapter 11).

Reads results/benchmark.json and results/profile_11.json; imports no TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from ..going_further.race import host_name
from ..results import cpu_name, default_results_dir, read_json
from .reference import reference_table


def _load(name: str, results_dir: Path | None):
    path = Path(results_dir or default_results_dir()) / name
    return read_json(path) if path.exists() else None


def _machine(measured: dict) -> str:
    hardware, versions = measured["hardware"], measured["versions"]
    flags = ", ".join(hardware.get("cpu_flags") or []) or "flags not recorded"
    return (f"{cpu_name(hardware)} ({flags}), {hardware['cores']} cores, TensorFlow {versions['tensorflow']}, "
            f"Keras {versions['keras']} ({measured['created'][:10]})")


def benchmark_markdown(results_dir: Path | None = None) -> str:
    """Training throughput measured by scripts/benchmark.py, as Markdown ('' if not measured) (Chapter 11)."""
    bench = _load("benchmark.json", results_dir)
    if bench is None:
        return ""
    lines = ["| Network | Batch | Precision | Input | Images/s | Range | CPU ms/img | MFLOP/img | GFLOP/s |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|"]
    for row in bench["rows"]:
        low, high = row["images_per_s_range"]
        precision = {"mixed_bfloat16": "bf16"}.get(row["precision"], row["precision"])
        lines.append(f"| {row['model']} | {row['batch_size']} | {precision} | {row['pipeline']} "
                     f"| {row['images_per_s']} | {low}-{high} | {row['cpu_ms_per_image']} "
                     f"| {row['training_mflop_per_image']:.0f} | {row['gflop_per_s']} |")
    peak = bench.get("float32_peak_gflop_per_s")
    peak_text = (f" The float32 peak of these cores is about {peak:.0f} GFLOP/s ({bench['threads']} cores x "
                 f"{bench['cpu_mhz'] / 1000:.1f} GHz x {bench['float32_flops_per_cycle_assumed']} operations per "
                 "cycle, assuming two AVX-512 FMA units); bfloat16 instructions (AVX512_BF16, AMX) can go past "
                 "it." if peak else "")
    lines += ["", f"Training throughput: median of {bench['repeats']} interleaved measurements of "
              f"{bench['images_per_measurement']:,} images per row, TensorFlow's thread pools fixed at "
              f"{bench['threads']}, measured by `scripts/benchmark.py` on {_machine(bench)}. bf16: Keras' "
              "`mixed_bfloat16` policy. CPU ms/img: "
              "process CPU time per training image (both cores count). MFLOP/img: the arithmetic of one "
              "image's training step (three forward passes of the convolutions and dense layers, "
              f"`cifar_lessons.going_further.flops`); GFLOP/s: images/s times that.{peak_text}"]
    return "\n".join(lines)


# The network each chapter trains, by the chapter whose network scripts/benchmark.py measures for it.
BENCHMARKED_AS = {"01": "02", "02": "02", "03": "03", "04": "04", "05": "08", "06": "08", "07": "08", "08": "08",
                  "11": "11"}


def main_runs_estimate(records: list[dict], results_dir: Path | None = None) -> str:
    """The main runs' epochs at the training rates scripts/benchmark.py measured, as a sentence ('' when the
    benchmark lacks a row for some run: its network, batch size and precision, fed as NumPy arrays).

    An estimate of the training steps alone, on one host with the cores to itself: validation, evaluation and
    saving add to it (Chapter 10)."""
    bench = _load("benchmark.json", results_dir)
    if bench is None or not records:
        return ""
    rates = {(row["chapter"], row["batch_size"], row["precision"]): row["images_per_s"]
             for row in bench["rows"] if row["pipeline"] == "numpy"}
    seconds = 0.0
    for record in records:
        key = (BENCHMARKED_AS.get(record["chapter"]), record["config"]["batch_size"], record["precision"])
        if key not in rates:
            return ""
        seconds += record["epochs_run"] * record["train_images"] / rates[key]
    return (f"At the training rates `scripts/benchmark.py` measured on {cpu_name(bench['hardware'])} "
            f"({bench['created'][:10]}), the same epochs in the same precisions take about {seconds / 60:.0f} min "
            "(an estimate of the training steps alone; validation, evaluation and saving add to it).")


def profile_markdown(results_dir: Path | None = None) -> str:
    """Where chapter 11's training step spends its time (scripts/profile_step.py), as Markdown (Chapter 11)."""
    profile = _load("profile_11.json", results_dir)
    if profile is None:
        return ""
    lines = ["| Layers (chapter 11) | Count | ms per step | Share | GFLOP/s |", "|---|---:|---:|---:|---:|"]
    for row in profile["rows"]:
        rate = "-" if row["gflop_per_s"] is None else row["gflop_per_s"]
        lines.append(f"| {row['group']} | {row['layers']} | {row['ms_per_step']} "
                     f"| {100 * row['share_of_layer_time']:.0f}% | {rate} |")
    lines += ["", f"One training step of chapter 11's network at batch {profile['batch_size']} in "
              f"{profile['precision']}, each layer timed alone (forward in training mode and both gradients, "
              f"median of {profile['repeats']}), by `scripts/profile_step.py` on {_machine(profile)}. The "
              f"layers alone take {profile['layers_ms_per_step']} ms; a whole training step "
              f"(`train_on_batch`: augmentation, the layers, the optimizer update) takes "
              f"{profile['train_step_ms']} ms, {profile['train_images_per_s']} images/s."]
    lines[-1] += _reference_rate(profile, results_dir)
    return "\n".join(lines)


def _reference_rate(profile: dict, results_dir: Path | None) -> str:
    """The training rate of airbench94 itself (PyTorch) on the profile's host, as a sentence ('' if it
    did not run there) (Chapter 11)."""
    rates = [row["train_images_per_s"] for row in reference_table(results_dir)
             if row["host"] == host_name(profile) and row["precision"] == "bfloat16 autocast"
             and row["variant"] == "full" and row["train_images_per_s"] and not row["machine_shared"]]
    if not rates:
        return ""
    rate = sum(rates) / len(rates)
    runs = "one run" if len(rates) == 1 else f"mean of {len(rates)} runs"
    keras_rate = profile["train_images_per_s"]
    return (f" On the same host, airbench94's own PyTorch script (`results/11/reference`) trained the network "
            f"chapter 11 ports at batch {profile['batch_size']} in bfloat16 autocast at {rate:.0f} images/s "
            f"({runs} on all 50,000 training images with the machine to itself, by airbench's own clock), "
            f"{rate / keras_rate:.1f} times this Keras step.")
