"""The ``sparse-rnn`` command line: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import logging
import sys

from sparse_rnn.cli import bench, demo, verify

SUBCOMMANDS = {"demo": demo, "bench": bench, "verify": verify}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparse-rnn", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, module in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return SUBCOMMANDS[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
