"""Regenerate the Python protobuf and gRPC code (with mypy stubs) from proto/.

Run with `make proto`. The output in src/webhook_grpc/_gen is committed; CI regenerates it and fails
when the result differs from what is committed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
BIN = Path(sys.executable).parent
OUT = ROOT / "src" / "webhook_grpc" / "_gen"
# protoc emits `from webhooks.v1 import x_pb2`; the package lives under webhook_grpc._gen.
IMPORT_RE = re.compile(r"^from webhooks\.v1 import ", re.MULTILINE)


def main() -> int:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
            f"--python_out={OUT}",
            f"--mypy_out={OUT}",
            f"--grpc_python_out={OUT}",
            f"--mypy_grpc_out={OUT}",
            *protos,
        ],
        check=True,
    )
    for path in sorted(OUT.rglob("*.py*")):
        text = path.read_text()
        fixed = IMPORT_RE.sub("from webhook_grpc._gen.webhooks.v1 import ", text)
        if fixed != text:
            path.write_text(fixed)
    for folder in [OUT, *sorted(p for p in OUT.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    print(f"generated {len(protos)} proto files into {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
