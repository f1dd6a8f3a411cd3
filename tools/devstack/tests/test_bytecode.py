import importlib.util
from pathlib import Path

from shopstack_devstack.bytecode import compile_all


def test_the_workspace_sources_are_compiled_and_nothing_else(tmp_path: Path) -> None:
    sources = [tmp_path / d / "pkg" / "mod.py" for d in ("libs/a/src", "services/b/src")]
    elsewhere = tmp_path / "docs" / "example.py"
    for path in [*sources, elsewhere]:
        path.parent.mkdir(parents=True)
        path.write_text("VALUE = 1\n")
    compile_all(packages=False, root=tmp_path)
    for path in sources:
        assert Path(importlib.util.cache_from_source(str(path))).exists(), path
    assert not Path(importlib.util.cache_from_source(str(elsewhere))).exists()
