"""``hezo-collector keygen [--out FILE]``: the Ed25519 key pair that signs commands to agents."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from collector.cli.context import CommandFailed, Context
from collector.errors import InvalidError

COMMANDS = ("keygen",)


def add_parsers(commands: Any) -> None:
    keygen = commands.add_parser("keygen", help="make the Ed25519 key pair that signs commands")
    keygen.add_argument("--out", type=Path, help="private key file (default: diagnostics.key_file)")


def run(args: argparse.Namespace, context: Context) -> int:
    from collector.remote.keys import keygen

    out = args.out or context.config.diagnostics.key_file
    if out is None:
        raise InvalidError("keygen needs --out or diagnostics.key_file")
    try:
        public = keygen(out)
    except OSError as exc:  # FileExistsError too: a key is never overwritten
        raise CommandFailed(str(exc)) from None
    print(f"private key {out} (mode 0600); public key {public}: copy it to each agent (commands.public_key)")
    return 0
