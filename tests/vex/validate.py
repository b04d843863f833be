#!/usr/bin/python3
"""Validate OpenVEX documents against a JSON Schema (draft 2020-12).

Usage:
    validate.py SCHEMA FILE...    each FILE holds one JSON document
    validate.py SCHEMA [-]        standard input, one document per line
                                  (what `klpctl vex` prints); blank lines
                                  are skipped

Prints every error as "  JSON-PATH [KEYWORD]: MESSAGE" under the file name
(or <stdin>:LINE), where KEYWORD is the schema keyword that failed, then one
summary line:
    checked N documents: V valid, I invalid

Exit status:
    0  every document is valid and there was at least one
    1  a document is invalid or is not strict JSON, or there was none
    2  cannot run: bad usage, unreadable file, invalid schema, or a
       missing Python module (Debian: apt-get install python3-jsonschema
       python3-rfc3987)

Written for Debian 12's python3-jsonschema (4.10); also works with newer
releases. Other *.schema.json files beside SCHEMA can be referenced from it
by their $id (klpctl-vex.schema.json builds on openvex-0.2.0.schema.json).

Formats are checked, never skipped: date-time is checked here (strict RFC
3339), and a schema that uses a format this installation cannot check is
refused instead of silently passing documents.
"""

import datetime
import json
import os
import re
import sys

USAGE = "usage: validate.py SCHEMA FILE...   or   validate.py SCHEMA [-] < documents-one-per-line"


def die(msg, code=2):
    print(f"validate.py: {msg}", file=sys.stderr)
    sys.exit(code)


try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError as e:
    die(f"missing Python module ({e}); on Debian: apt-get install python3-jsonschema python3-rfc3987")


# RFC 3339, section 5.6 (date-time): full-date "T" full-time, with a
# mandatory offset. Lower-case t and z are allowed by the RFC's ABNF.
RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"([Zz]|([+-])(\d{2}):(\d{2}))$"
)


def is_rfc3339(value):
    if not isinstance(value, str):
        return True  # "format" only constrains strings
    m = RFC3339.match(value)
    if not m:
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    if hour > 23 or minute > 59 or second > 60:  # 60: a leap second
        return False
    if m.group(9) and (int(m.group(10)) > 23 or int(m.group(11)) > 59):
        return False
    return True


def format_checker():
    checker = FormatChecker()
    checker.checks("date-time")(is_rfc3339)
    return checker


def formats_used(node, found):
    if isinstance(node, dict):
        fmt = node.get("format")
        if isinstance(fmt, str):
            found.add(fmt)
        for v in node.values():
            formats_used(v, found)
    elif isinstance(node, list):
        for v in node:
            formats_used(v, found)
    return found


def strict_json(text):
    """json.loads, but duplicate keys and NaN/Infinity are errors."""

    def no_dupes(pairs):
        obj = {}
        for k, v in pairs:
            if k in obj:
                raise ValueError(f"duplicate key {k!r}")
            obj[k] = v
        return obj

    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, object_pairs_hook=no_dupes, parse_constant=no_constant)


def load_schemas(path):
    """The schema at PATH and every *.schema.json beside it, by $id."""
    store = {}
    here = os.path.dirname(os.path.abspath(path))
    for name in sorted(os.listdir(here)):
        if name.endswith(".schema.json"):
            full = os.path.join(here, name)
            try:
                with open(full, encoding="utf-8") as f:
                    s = strict_json(f.read())
            except (OSError, ValueError) as e:
                die(f"{full}: {e}")
            if isinstance(s, dict) and "$id" in s:
                store[s["$id"]] = s
    try:
        with open(path, encoding="utf-8") as f:
            schema = strict_json(f.read())
    except (OSError, ValueError) as e:
        die(f"{path}: {e}")
    return schema, store


def make_validator(schema, store, checker):
    try:
        Draft202012Validator.check_schema(schema)
        for s in store.values():
            Draft202012Validator.check_schema(s)
    except jsonschema.exceptions.SchemaError as e:
        die(f"invalid schema: {e.message} at {json_path(e)}")
    try:
        # jsonschema >= 4.18: the referencing library.
        from referencing import Registry, Resource

        registry = Registry().with_resources(
            (uri, Resource.from_contents(s)) for uri, s in store.items()
        )
        return Draft202012Validator(schema, registry=registry, format_checker=checker)
    except ImportError:
        # Debian 12's 4.10: RefResolver with a store.
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        return Draft202012Validator(schema, resolver=resolver, format_checker=checker)


def json_path(error):
    """$.a[0]['@id']: the same rendering whatever the jsonschema version."""
    out = "$"
    for part in error.absolute_path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


def short(text, limit=160):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(error, indent="  "):
    """PATH [KEYWORD]: MESSAGE, plus the alternatives of anyOf/oneOf."""
    lines = [f"{indent}{json_path(error)} [{error.validator}]: {short(error.message)}"]
    if error.validator in ("anyOf", "oneOf") and error.context:
        subs = {(json_path(sub), sub.validator, short(sub.message)) for sub in error.context}
        for path, keyword, message in sorted(subs):
            lines.append(f"{indent}    - {path} [{keyword}]: {message}")
    return lines


def documents(args):
    """Yields (label, text) for each document to check."""
    if not args or args == ["-"]:
        for n, line in enumerate(sys.stdin, 1):
            if line.strip():
                yield f"<stdin>:{n}", line
        return
    for path in args:
        if path == "-":
            die("'-' (stdin) cannot be mixed with files")
        try:
            with open(path, encoding="utf-8") as f:
                yield path, f.read()
        except (OSError, UnicodeDecodeError) as e:
            die(f"{path}: {e}")


def main(argv):
    if len(argv) < 1 or argv[0] in ("-h", "--help"):
        die(USAGE)
    schema, store = load_schemas(argv[0])
    checker = format_checker()
    unchecked = sorted(f for f in formats_used([schema, list(store.values())], set()) if f not in checker.checkers)
    if unchecked:
        die(
            "this jsonschema cannot check format(s) " + ", ".join(unchecked)
            + " (iri needs python3-rfc3987); refusing to validate with them unchecked"
        )
    validator = make_validator(schema, store, checker)

    checked = invalid = 0
    for label, text in documents(argv[1:]):
        checked += 1
        try:
            doc = strict_json(text)
        except ValueError as e:
            invalid += 1
            print(f"{label}: not valid JSON: {e}")
            continue
        # The klpctl schema layers on the OpenVEX one, so one fault can be
        # reported by both: print each distinct line once.
        lines = []
        for e in sorted(validator.iter_errors(doc), key=lambda e: (list(e.absolute_path), e.validator, e.message)):
            for line in describe(e):
                if line.startswith("    - ", 2) or line not in lines:
                    lines.append(line)
        if lines:
            invalid += 1
            print(f"{label}: invalid")
            print("\n".join(lines))

    print(f"checked {checked} documents: {checked - invalid} valid, {invalid} invalid")
    if checked == 0:
        print("validate.py: no documents to check", file=sys.stderr)
        return 1
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
