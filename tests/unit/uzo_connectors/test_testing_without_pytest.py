"""``uzo_connectors.testing`` imports without pytest; only the mixin needs it, on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from uzo_connectors import testing
from uzo_connectors.testing.contract import ConnectorContract

_CHILD = r"""
import sys

class BlockPytest:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("pytest", "_pytest"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, BlockPytest())

import uzo_connectors.testing as t

table = t.make_sample_table(4)
assert table.num_rows == 4 and table.column_names == ["id", "name", "amount"]
assert t.same_rows(table.slice(2).select(["amount", "id", "name"]), table.slice(2))
try:
    from uzo_connectors.testing import ConnectorContract
except ImportError as exc:
    assert exc.name == "pytest", exc.name
    assert "install pytest" in str(exc)
else:
    raise SystemExit("ConnectorContract imported without pytest")
assert not any(m.partition(".")[0] in ("pytest", "_pytest") for m in sys.modules)
print("ok")
"""


def test_helpers_import_and_work_without_pytest() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_mixin_is_re_exported_with_pytest() -> None:
    assert testing.ConnectorContract is ConnectorContract
    assert hasattr(ConnectorContract, "test_read_everything")


def test_unknown_attributes_still_fail() -> None:
    with pytest.raises(AttributeError, match="NoSuchHelper"):
        testing.NoSuchHelper  # type: ignore[attr-defined]  # noqa: B018
