"""Compare the CEL libraries on PyPI for subscription filters (docs/CEL_FILTERS.md).

Run in a scratch virtualenv holding the candidates (only cel-expr-python is a project
dependency; cel-python imports as `celpy`, common-expression-language as `cel`):

    python -m venv /tmp/celcmp
    /tmp/celcmp/bin/pip install cel-python common-expression-language cel-expr-python
    /tmp/celcmp/bin/python -m scripts.compare_cel_libraries   # from the repository root

Each library gets the same cases over the same projected event; a case's outcome is the value,
`error` (evaluation raised or returned an error) or `compile error`. The speed figure compiles
once and evaluates the SPEC §11 example many times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.sample_event import PREVIOUS, PRODUCT, SPEC_EXAMPLE

EVENT: dict[str, Any] = {
    "type": "product.price_changed",
    "entity_id": "prod_1",
    # numbers from a protobuf Struct are doubles
    "data": PRODUCT | {"stock": 10.0, "tags": ["blue", "sale"]},
    "previous": PREVIOUS,
}

CASES: list[tuple[str, str]] = [
    ("SPEC §11 example", SPEC_EXAMPLE),
    ("missing field compared", 'data.cost_price == "1"'),
    ("has() on missing field", "has(data.cost_price)"),
    ("has() on present field", "has(previous.selling_price)"),
    ("string functions", 'data.sku.startsWith("A-") && data.name.contains("Widget")'),
    ("matches() (RE2)", 'data.sku.matches("^A-[0-9]+$")'),
    ("in list", 'type in ["product.created", "product.price_changed"]'),
    ("double field vs int literal", "data.stock > 5"),
    ("list macro", 'data.tags.exists(t, t == "sale")'),
    ("timestamp compare", 'timestamp(data.updated_at) > timestamp("2026-01-01T00:00:00Z")'),
    (
        "duration arithmetic",
        'timestamp(data.updated_at) - timestamp(data.created_at) > duration("1h")',
    ),
    ("bad conversion", "double(data.sku) > 1.0"),
    ("non-bool result", "data.sku"),
    ("unknown function", "shout(data.sku)"),
    ("type error", "type == 1 || entity_id > 3"),
    ("syntax error", 'type == "product.created" &&\n  data.selling_price >'),
]

Compiled = Callable[[dict[str, Any]], Any]


def celpy_compile(source: str) -> Compiled:
    import celpy

    env = celpy.Environment()
    program = env.program(env.compile(source))

    def run(event: dict[str, Any]) -> Any:
        result = program.evaluate(celpy.json_to_cel(event))
        if isinstance(result, celpy.CELEvalError):
            raise result
        return result

    return run


def rust_cel_compile(source: str) -> Compiled:
    import cel

    program = cel.compile(source)
    return program.execute


def cel_expr_compile(source: str) -> Compiled:
    from cel_expr_python import cel

    # `type` is CEL's own identifier: declared in a container, `event.type` is found first.
    dyn_map = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    env = cel.NewEnv(
        container="event",
        variables={
            "event.type": cel.Type.STRING,
            "event.entity_id": cel.Type.STRING,
            "event.data": dyn_map,
            "event.previous": dyn_map,
        },
    )
    expression = env.compile(source)

    def run(event: dict[str, Any]) -> Any:
        result = expression.eval(data={f"event.{k}": v for k, v in event.items()})
        if result.type() == cel.Type.ERROR:
            raise ValueError(result.value())
        return result.value()

    return run


LIBRARIES: dict[str, Callable[[str], Compiled]] = {
    "cel-python (celpy)": celpy_compile,
    "common-expression-language": rust_cel_compile,
    "cel-expr-python": cel_expr_compile,
}


def outcome(compile_: Callable[[str], Compiled], source: str) -> str:
    try:
        run = compile_(source)
    except Exception as error:
        return f"compile error: {_one_line(error)}"
    try:
        return repr(run(EVENT))
    except Exception as error:
        return f"error: {_one_line(error)}"


def _one_line(error: BaseException) -> str:
    return " | ".join(str(error).split("\n"))[:160]


def micros_per_evaluation(compile_: Callable[[str], Compiled], runs: int = 10_000) -> float:
    run = compile_(SPEC_EXAMPLE)
    run(EVENT)  # warm up
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(runs):
            run(EVENT)
        samples.append((time.perf_counter() - started) / runs * 1e6)
    return sorted(samples)[1]


def micros_per_compile(compile_: Callable[[str], Compiled], runs: int = 200) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        compile_(SPEC_EXAMPLE)
    return (time.perf_counter() - started) / runs * 1e6


def main() -> None:
    for name, compile_ in LIBRARIES.items():
        print(f"## {name}")
        for label, source in CASES:
            print(f"- {label}: {outcome(compile_, source)}")
        print(f"- compile: {micros_per_compile(compile_):.1f} µs")
        print(f"- evaluate: {micros_per_evaluation(compile_):.2f} µs (median of 3 runs)")
        print()


if __name__ == "__main__":
    main()
