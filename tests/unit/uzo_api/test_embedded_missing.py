"""Without pgserver and without UZO_DATABASE_URL, the error says what to provide."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import pytest

from uzo_api.db import embedded

if TYPE_CHECKING:
    from pathlib import Path


def test_missing_pgserver_names_the_extra_and_the_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)  # `import pgserver` raises ImportError
    with pytest.raises(embedded.EmbeddedPostgresError) as info:
        embedded._start(tmp_path / "pg")
    message = str(info.value)
    assert "UZO_DATABASE_URL" in message
    if sys.version_info >= (3, 13):
        assert "publishes wheels up to 3.12" in message
    else:
        assert "uzo[embedded]" in message
    assert not (tmp_path / "pg").exists()
