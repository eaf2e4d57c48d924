"""A griffe extension for the API reference: the docstrings use reStructuredText roles
(``:class:`Golem```) and ``Usage::`` blocks, which Markdown would print as they are.
Roles become inline code and ``::`` blocks become Python code blocks."""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|mod|data|exc|obj):`~?([^`]+)`")
#: ``a, b: what both are`` in an Args section, the names possibly wrapped over two lines.
GROUP = re.compile(r"^(\s+)(\w+(?:, \w+)+): (.*)$")


def split_groups(text: str) -> str:
    """Google style has one name per entry: ``a, b: text`` becomes ``a: text`` and
    ``b: text`` (griffe would warn about a parameter named "a, b")."""
    lines = text.split("\n")
    joined = []
    for line in lines:  # names wrapped over two lines: "a, b,\n    c: text"
        if joined and re.match(r"^\s+\w+(?:, \w+)*,$", joined[-1]) and re.match(r"^\s+\w+[\w, ]*: ", line):
            joined[-1] = joined[-1] + " " + line.strip()
        else:
            joined.append(line)
    out, index = [], 0
    while index < len(joined):
        match = GROUP.match(joined[index])
        if not match:
            out.append(joined[index])
            index += 1
            continue
        indent, names, first = match.groups()
        index += 1
        rest = []
        while index < len(joined) and joined[index].startswith(indent + " "):
            rest.append(joined[index])
            index += 1
        for name in names.split(", "):
            out += [f"{indent}{name}: {first}"] + rest
    return "\n".join(out)


def markdown(text: str) -> str:
    text = split_groups(ROLE.sub(lambda m: f"`{m.group(1)}`", text))
    lines, out, index = text.split("\n"), [], 0
    while index < len(lines):
        line = lines[index]
        if line.rstrip().endswith("::") and not line.strip().startswith(">>>"):
            head = line.rstrip()[:-2].rstrip()
            out.append(head + (":" if head and not head.endswith(":") else ""))
            index += 1
            block = []
            while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" " * (
                    len(line) - len(line.lstrip()) + 1))):
                block.append(lines[index])
                index += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            body = [b for b in block if b.strip()]
            indent = min((len(b) - len(b.lstrip()) for b in body), default=0)
            prefix = " " * (len(line) - len(line.lstrip()))
            out += ["", prefix + "```python"] + [prefix + b[indent:] for b in block] + [prefix + "```", ""]
            continue
        out.append(line)
        index += 1
    return "\n".join(out)


class RstRoles(griffe.Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
