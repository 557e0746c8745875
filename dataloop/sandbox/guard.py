"""What the tests of a sandboxed program may compare, and what they take from it: the parent's
side of the comparison guard (the child's is in :mod:`dataloop.sandbox.harness`)."""

from __future__ import annotations

import ast
import builtins

_COMPARE = "__dataloop_compare__"
_OPS = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}


class _Guard(ast.NodeTransformer):
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        if not all(type(op) in _OPS for op in node.ops):
            return node  # ``is`` cannot be fooled
        call = ast.Call(
            func=ast.Name(id=_COMPARE, ctx=ast.Load()),
            args=[
                node.left,
                ast.Tuple([ast.Constant(_OPS[type(op)]) for op in node.ops], ast.Load()),
                ast.Tuple(list(node.comparators), ast.Load()),
            ],
            keywords=[],
        )
        return ast.copy_location(call, node)


def guard_comparisons(tests: str) -> str:
    """``tests`` with each comparison (``==``, ``<``, ``in`` …) made through the harness: when one
    side is plain data (builtin values, recursively), the other must be too — an object whose
    ``__eq__`` always says yes does not pass for ``'b a'``. Chained comparisons evaluate all
    their operands. Code that does not parse is returned as is (it fails when run)."""
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return tests
    return ast.unparse(ast.fix_missing_locations(_Guard().visit(tree)))


def free_names(tests: str, setup: str = "") -> tuple[str, ...]:
    """The names ``tests`` read but neither they nor ``setup`` bind, builtins excepted: what
    they take from the program (MBPP's asserts: the function under test). Code that does not
    parse has none."""
    try:
        read, bound = ast.parse(tests), ast.parse(setup)
    except SyntaxError:
        return ()
    loaded: list[str] = []
    binds = set(dir(builtins))
    for tree in (read, bound):
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if not isinstance(node.ctx, ast.Load):
                    binds.add(node.id)
                elif tree is read:
                    loaded.append(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                binds.add(node.name)
            elif isinstance(node, ast.arg):
                binds.add(node.arg)
            elif isinstance(node, ast.alias):
                binds.add((node.asname or node.name).partition(".")[0])
            elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
                binds.add(node.name)
    return tuple(dict.fromkeys(n for n in loaded if n not in binds))
