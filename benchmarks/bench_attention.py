"""Attention time and peak memory vs sequence length: ours vs torch SDPA (notebook 02).

Run from the repo root::

    .venv/bin/python benchmarks/bench_attention.py            # L = 64 ... 4096 on CPU
    .venv/bin/python benchmarks/bench_attention.py --quick    # L = 64 ... 1024

Prints one row per length, then the fitted exponents ``cost ~ L**k`` over the largest
lengths. The written-out attention stores the ``(B, heads, L, L)`` weight matrix, so its
memory grows with k ≈ 2 and, once the score matrix dominates, its time as well; torch's
fused kernels avoid storing that matrix (memory k ≈ 1) but still do ~L² work. Times on a
shared machine are noisy: compare the ratios of one run, not numbers across runs.
"""

from __future__ import annotations

import argparse
import sys

import torch

from gesture_utils.attention import attention_cost, fit_exponent
from gesture_utils.runtime import pick_device


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lengths up to 1024 only")
    parser.add_argument("--dim", type=int, default=64, help="head dimension d")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: best available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    if device == "mps":  # no peak-memory counter there; CPU numbers are comparable
        device = "cpu"
    top = 1024 if args.quick else 4096
    lengths = [2**i for i in range(6, top.bit_length())]
    rows = attention_cost(lengths, dim=args.dim, heads=args.heads, repeats=args.repeats,
                          device=device)

    print(f"device={device} · d={args.dim} · heads={args.heads} · batch=1 · "
          f"threads={torch.get_num_threads()}")
    print(f"{'L':>6} {'ours ms':>9} {'torch ms':>9} {'ratio':>6} "
          f"{'ours MiB':>9} {'torch MiB':>10} {'L×L MiB':>8}")
    for r in rows:
        print(f"{int(r['length']):>6} {r['ours_ms']:>9.3f} {r['torch_ms']:>9.3f} "
              f"{r['ours_ms'] / r['torch_ms']:>6.2f} {r['ours_mb']:>9.2f} {r['torch_mb']:>10.2f} "
              f"{r['weights_mb']:>8.2f}")
    big = rows[len(rows) // 2:]                      # the large-L half, where L² dominates
    L = [r["length"] for r in big]
    print("fitted exponent k in cost ~ L^k over L >= "
          f"{int(L[0])}: time ours {fit_exponent(L, [r['ours_ms'] for r in big]):.2f}, "
          f"torch {fit_exponent(L, [r['torch_ms'] for r in big]):.2f}; "
          f"memory ours {fit_exponent(L, [r['ours_mb'] for r in big]):.2f}, "
          f"torch {fit_exponent(L, [max(r['torch_mb'], 1e-6) for r in big]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
