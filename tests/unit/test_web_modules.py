"""Static checks of the web page's ES modules (web/*.js, web/js/*.js; issue 22): no build step, so what a bundler
would refuse is checked here, without a browser.

Each module is under 300 lines and starts with a header comment saying what it owns; index.html loads only the
entry module, as `<script type="module">`; every import is a relative path to a module of web/ and names what that
module exports (a wrong name stops the whole page from loading); the import graph has no circle (a module's events
reach a module above it through a callback, not an import) and every module is reached from the entry (none is
dead). tests/e2e/test_web_page.py checks in Chromium that the modules load, served as JavaScript, with no console
error.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
ENTRY = WEB / "app.js"
MAX_LINES = 300
MODULES = sorted(WEB.rglob("*.js"))

IMPORT = re.compile(r"^import\s+(?:\{(?P<names>[^}]*)\}\s+from\s+)?'(?P<path>[^']+)';", re.MULTILINE | re.DOTALL)
EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function|const|let|class)\s+(?P<name>[A-Za-z_$][\w$]*)", re.MULTILINE)


def name(module: Path) -> str:
    return module.relative_to(WEB).as_posix()


def imports(module: Path) -> dict[Path, set[str]]:
    """The modules `module` imports -> the names it imports from each."""
    found: dict[Path, set[str]] = {}
    for match in IMPORT.finditer(module.read_text()):
        target = (module.parent / match["path"]).resolve()
        names = {part.split(" as ")[0].strip() for part in (match["names"] or "").split(",") if part.strip()}
        found.setdefault(target, set()).update(names)
    return found


def test_the_page_is_split_into_modules():
    assert ENTRY in MODULES and len(MODULES) > 10, [name(module) for module in MODULES]


@pytest.mark.parametrize("module", MODULES, ids=name)
def test_each_module_is_short_and_says_what_it_owns(module):
    lines = module.read_text().splitlines()
    assert len(lines) < MAX_LINES, f"{name(module)}: {len(lines)} lines"
    assert lines[0].startswith("// ") and len(lines[0]) > 40, f"{name(module)} has no header comment"


def test_the_page_loads_only_the_entry_module():
    scripts = re.findall(r"<script\b[^>]*>", (WEB / "index.html").read_text())
    assert scripts == ['<script src="/static/app.js" type="module">']


@pytest.mark.parametrize("module", MODULES, ids=name)
def test_each_import_names_what_a_module_of_the_page_exports(module):
    text = module.read_text()
    specifiers = re.findall(r"^import\b.*?'([^']+)';", text, re.MULTILINE | re.DOTALL)
    assert len(specifiers) == len(imports(module))  # every import statement was read
    for specifier in specifiers:
        assert specifier.startswith("./") and specifier.endswith(".js"), f"{name(module)}: {specifier}"
    for target, names in imports(module).items():
        assert target in MODULES, f"{name(module)} imports {target}, not a module of web/"
        exported = set(EXPORT.findall(target.read_text()))
        assert names <= exported, f"{name(module)} imports {sorted(names - exported)} that {name(target)} lacks"
        body = IMPORT.sub("", text)
        used = r"(?<![\w$])(?<![^.]\.){}(?![\w$])"  # a name, not a property (a spread `...name` is a use)
        unused = {imported for imported in names if not re.search(used.format(re.escape(imported)), body)}
        assert not unused, f"{name(module)} imports {sorted(unused)} from {name(target)} and never uses them"


def test_the_import_graph_has_no_circle_and_no_dead_module():
    graph = {module: set(imports(module)) for module in MODULES}
    done: set[Path] = set()

    def visit(module: Path, path: tuple[Path, ...]) -> None:
        assert module not in path, "import circle: " + " -> ".join(name(step) for step in (*path, module))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, (*path, module))
        done.add(module)

    visit(ENTRY, ())
    assert sorted(name(module) for module in MODULES if module not in done) == []  # reached by no import
