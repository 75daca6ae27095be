"""Schemathesis hooks for tests/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

Random slugs only ever reach "not found". Half the time, a path parameter that documents
examples takes one of them instead: the demo objects (renovation, insurance, grab-demo), so the
fuzzer also reaches the code behind the look-up. Generic: a new route's examples count too."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st


def _examples(parameter: Any) -> list[Any]:
    definition = parameter.definition
    found = [e["value"] for e in (definition.get("examples") or {}).values() if "value" in e]
    return found + list((definition.get("schema") or {}).get("examples") or [])


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    known = {
        parameter.name: values
        for parameter in context.operation.path_parameters
        if (values := _examples(parameter))
    }
    if not known or path_parameters is None:
        return st.just(path_parameters)
    real = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in known.items()})
    return st.one_of(
        st.just(path_parameters), real.map(lambda chosen: {**path_parameters, **chosen})
    )
