"""Regenerate the Python protobuf and gRPC code (with mypy stubs) from proto/.

Run with `make proto`. One run writes the same generated code twice, once per package, each with
its imports rewritten to live inside that package:

* the server's src/webhook_grpc/_gen (imported as `webhook_grpc._gen.webhooks.v1`), and
* the Python client's clients/python/src/webhook_grpc_client/_gen
  (imported as `webhook_grpc_client._gen.webhooks.v1`).

Both are committed; CI regenerates them and fails when the result differs from what is committed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
BIN = Path(sys.executable).parent
# protoc emits `from webhooks.v1 import x_pb2`; each copy lives under its package's _gen.
IMPORT_RE = re.compile(r"^from webhooks\.v1 import ", re.MULTILINE)


@dataclass(frozen=True)
class Target:
    """Where one copy of the generated code goes, and the package it is imported from."""

    out: Path
    package: str


TARGETS = (
    Target(ROOT / "src" / "webhook_grpc" / "_gen", "webhook_grpc._gen"),
    Target(
        ROOT / "clients" / "python" / "src" / "webhook_grpc_client" / "_gen",
        "webhook_grpc_client._gen",
    ),
)


def _protoc(protos: list[str], out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out}",
            f"--mypy_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_grpc_out={out}",
            *protos,
        ],
        check=True,
    )


def _install(generated: Path, target: Target) -> None:
    """Copy the freshly generated tree to `target`, rewriting imports to its package."""
    if target.out.exists():
        shutil.rmtree(target.out)
    target.out.mkdir(parents=True)
    for source in sorted(generated.rglob("*.py*")):
        destination = target.out / source.relative_to(generated)
        destination.parent.mkdir(parents=True, exist_ok=True)
        text = source.read_text()
        destination.write_text(IMPORT_RE.sub(f"from {target.package}.webhooks.v1 import ", text))
    for folder in [target.out, *sorted(p for p in target.out.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()


def main() -> int:
    # proto/google holds vendored googleapis imports; their Python code comes from the
    # googleapis-common-protos package, so only our own files are generated.
    protos = sorted(
        str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "webhooks").rglob("*.proto")
    )
    with tempfile.TemporaryDirectory(prefix="webhook-grpc-protos-") as scratch:
        generated = Path(scratch)
        _protoc(protos, generated)
        for target in TARGETS:
            _install(generated, target)
            print(f"generated {len(protos)} proto files into {target.out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
