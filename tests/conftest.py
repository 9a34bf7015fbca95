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


@pytest.fixture(scope="session")
def kb(tmp_path_factory):
    """The real knowledge base, built from knowledge/ once per test session."""
    return kbmod.build(kbmod.SOURCE_DIR, tmp_path_factory.mktemp("kb") / "kb.pickle")


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "test.db")


@pytest.fixture
def dispatcher(kb, store):
    return Dispatcher(Settings(db=Path(":memory:")), store, kb, today=lambda: TODAY)
