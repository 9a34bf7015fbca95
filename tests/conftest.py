import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from bot.config import Settings  # noqa: E402
from bot.runtime import Dispatcher  # noqa: E402
from bot.storage import Store  # noqa: E402
from knowledge import kb as kbmod  # noqa: E402

TODAY = dt.date(2026, 11, 22)


_BUILT = {}


@pytest.fixture(scope="session")
def kb_file(tmp_path_factory):
    """The real knowledge base, built from knowledge/ once per test session: its file (for processes)."""
    path = tmp_path_factory.mktemp("kb") / "kb.pickle"
    _BUILT["kb"] = kbmod.build(kbmod.SOURCE_DIR, path)
    return path


@pytest.fixture(scope="session")
def kb(kb_file):
    """The same knowledge base, in this process."""
    return _BUILT["kb"]


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "test.db")


@pytest.fixture
def dispatcher(kb, store):
    return Dispatcher(Settings(db=Path(":memory:")), store, kb, today=lambda: TODAY)
