"""Checks `ethcloud show --json` output (file argv[2]) against the schema (file argv[1]).

With python3-jsonschema installed it validates against the schema; without it, it checks
the required keys and their JSON types as the schema lists them (a subset of the schema
language: type, required, properties, items, enum, const, additionalProperties). Prints
"valid (jsonschema)" or "valid (fallback)" and exits 0, or prints the first error and exits 1.
"""
import json
import sys

TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool,
    "integer": int, "number": (int, float),
}


def check(value, schema, where):
    kind = schema.get("type")
    if kind:
        ok = isinstance(value, TYPES[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))
        if not ok:
            raise ValueError(f"{where}: {value!r} is not of type {kind}")
        if "minimum" in schema and value < schema["minimum"]:
            raise ValueError(f"{where}: {value!r} is below {schema['minimum']}")
    if "const" in schema and value != schema["const"]:
        raise ValueError(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise ValueError(f"{where}: no key {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                check(item, props[key], f"{where}.{key}")
            elif extra is False:
                raise ValueError(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                check(item, extra, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check(item, schema["items"], f"{where}[{i}]")


def main():
    with open(sys.argv[1]) as f:
        schema = json.load(f)
    with open(sys.argv[2]) as f:
        doc = json.load(f)
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    try:
        if jsonschema is not None:
            jsonschema.validate(doc, schema)
            how = "jsonschema"
        else:
            check(doc, schema, "$")
            how = "fallback"
    except Exception as e:  # noqa: BLE001 - any failure is reported the same way
        print(f"invalid: {getattr(e, 'message', e)}")
        sys.exit(1)
    print(f"valid ({how})")


main()
