"""bench: the benchmark suite of issue 8, one module per figure, each registered by name.

    python -m bench --quick                         # every figure at tiny sizes (checks the code, in seconds)
    python -m bench weighting_overhead --threads 1  # one figure, measured
    python -m bench gpu_throughput trial_packing    # the GPU figures, on a machine with a GPU

Each run writes <out>/<name>.json (the figure's result, machine, versions, command and date) and a Markdown report of
every record in <out>. A figure is a ratio of things measured side by side in one run; no timing is asserted anywhere.
"""

import importlib

from bench._registry import (NO_GPU, Benchmark, Context, Result, Table, get_benchmark, list_benchmarks,
                             register_benchmark)

# The modules that register a benchmark each (figures 1–7, then the extras).
MODULES = ("weighting_overhead", "data_pipeline", "gpu_throughput", "trial_packing", "study_overhead",
           "search_efficiency", "mlflow_cost", "evaluation_cost", "gradsim_accuracy", "probe_accuracy", "gpu_check",
           "cluster_utilisation")
for _module in MODULES:
    importlib.import_module(f"bench.{_module}")

__all__ = ["MODULES", "NO_GPU", "Benchmark", "Context", "Result", "Table", "get_benchmark", "list_benchmarks",
           "register_benchmark"]
