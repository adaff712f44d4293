"""The ``gesture-utils`` command line: one subcommand per stage of the series.

Each stage module exposes ``configure_cli(parser)``, which adds its arguments and sets
``run=<callable(args) -> int>``.  Only the module of the chosen subcommand is imported,
so ``gesture-utils predict`` needs no PyTorch.  A ``GestureError`` is printed as one
line and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gesture_utils.errors import GestureError

#: subcommand -> (module, one-line help). Add a line here when a stage adds a command.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("gesture_utils.generation", "render a synthetic gesture dataset"),
    "train": ("gesture_utils.training", "train a gesture model (ViT per frame + temporal head)"),
    "evaluate": ("gesture_utils.evaluation", "metrics and confusion matrices on the test split"),
    "benchmark": ("gesture_utils.benchmark", "latency of PyTorch vs ONNX fp32 vs INT8"),
    "export": ("gesture_utils.export", "export a checkpoint to ONNX (clip + streaming, INT8)"),
    "predict": ("gesture_utils.inference", "classify clips with an exported ONNX model"),
    "stream": ("gesture_utils.stream", "recognise gestures live from a camera, video or frames"),
    "import-jester": ("gesture_utils.importers", "import Jester-style clips into the dataset layout"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The full parser; only ``command``'s module is imported to fill in its arguments."""
    parser = argparse.ArgumentParser(
        prog="gesture-utils", description="Tools of the gesture-recognition tutorial series."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).configure_cli(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command in COMMANDS else None).parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except GestureError as exc:
        print(f"gesture-utils {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gesture-utils {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
