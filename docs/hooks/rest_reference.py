"""MkDocs hooks: the REST reference (docs/rest.md), rendered at build time
from the dashboard's own OpenAPI document, so it cannot drift from the routes;
and contrib/ and examples/ published beside the pages, so that the pages'
links to them (../contrib/..., right on GitHub) lead somewhere on the site
too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

MARKER = "<!-- rest-reference -->"
PUBLISHED = ("contrib", "examples")  # folders of the repository the pages link to


def schema_type(schema: dict[str, Any]) -> str:
    """A short name for a JSON Schema: `string`, `integer | null`, `ErrorBody`."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(schema_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(f"`{value}`" for value in schema["enum"])
    return str(schema.get("type", "any"))


def cell(text: str) -> str:
    """Text for one cell of a Markdown table: one line, no bare pipes."""
    text = re.sub(r"``([^`]+)``", r"`\1`", text)  # reST literals, as FastAPI keeps them
    return " ".join(text.split()).replace("|", "\\|")


def operation(method: str, path: str, op: dict[str, Any], schemas: dict[str, Any]) -> str:
    out = [f"### `{method.upper()} {path}`", "", cell(op.get("summary", "")), ""]
    if op.get("description"):
        out += [re.sub(r"``([^`]+)``", r"`\1`", op["description"]).strip(), ""]
    if params := op.get("parameters"):
        out += ["| parameter | in | type | required | meaning |", "|---|---|---|---|---|"]
        for p in params:
            default = p["schema"].get("default")
            meaning = p.get("description", "") + (f" (default `{default}`)" if default else "")
            required = "yes" if p.get("required") else "no"
            kind = cell(schema_type(p["schema"]))
            out.append(f"| `{p['name']}` | {p['in']} | {kind} | {required} | {cell(meaning)} |")
        out.append("")
    if body := op.get("requestBody"):
        schema = body["content"]["application/json"]["schema"]
        name = schema_type(schema)
        fields = schemas.get(name, {}).get("properties", {})
        required = set(schemas.get(name, {}).get("required", []))
        out += ["| body field | type | required | meaning |", "|---|---|---|---|"]
        for field, spec in fields.items():
            need = "yes" if field in required else "no"
            meaning = cell(spec.get("description", ""))
            out.append(f"| `{field}` | {cell(schema_type(spec))} | {need} | {meaning} |")
        out.append("")
    out += ["| status | meaning |", "|---|---|"]
    for code, response in sorted(op["responses"].items()):
        out.append(f"| {code} | {cell(response.get('description', ''))} |")
    return "\n".join(out) + "\n"


def render(document: dict[str, Any]) -> str:
    schemas = document.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[str]] = {}
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append(operation(method, path, op, schemas))
    return "\n".join(f"## {tag.capitalize()}\n\n" + "\n".join(ops) for tag, ops in by_tag.items())


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    # The pages sit at the top of docs/: ../contrib/ in the repository is
    # contrib/ on the site (on_files).
    for folder in PUBLISHED:
        markdown = markdown.replace(f"](../{folder}/", f"]({folder}/")
    if MARKER not in markdown:
        return markdown
    # Imported here: the other pages build without the dashboard's extra.
    from tarefa import App
    from tarefa.web.server import create_app

    # No Redis is reached: the document is made from the routes alone.
    document = create_app(App(url="redis://127.0.0.1:1/0")).openapi()
    return markdown.replace(MARKER, render(document))


def on_files(files: Files, config: Any) -> Files:
    root = Path(config["config_file_path"]).parent
    for folder in PUBLISHED:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                uri = path.relative_to(root).as_posix()
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
