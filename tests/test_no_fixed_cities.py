"""Help, hints, examples and the Telegram menu name the cities the knowledge base holds, none written in code."""
import datetime as dt
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.channels.telegram import commands
from handlers.help import ask_example, help_text, place_example
from knowledge import importer
from knowledge import kb as kbmod
from knowledge.qa import answer, hint, resolve_city

DEV = Path(__file__).parent / "data" / "dev"


@pytest.fixture(scope="module")
def other_kb(tmp_path_factory):
    """A base holding only a measure imported from a dev document (绵阳), raw as extracted."""
    source = tmp_path_factory.mktemp("other") / "knowledge"
    shutil.copytree(kbmod.SOURCE_DIR, source, ignore=shutil.ignore_patterns("*.py", "__pycache__", "measures"))
    (source / "measures").mkdir()
    importer.write_measure(importer.import_document(DEV / "mianyang.txt", existing={}), source / "measures")
    return kbmod.build(source)


def test_help_and_hints_name_the_cities_held(other_kb):
    texts = [help_text(SimpleNamespace(kb=other_kb)), ask_example(other_kb), place_example(other_kb), hint(other_kb),
             " ".join(d for _, d in commands(other_kb)), answer(other_kb, "", dt.date(2026, 11, 22)).answer]
    for text in texts:
        assert "威海" not in text and "包头" not in text and "荣成" not in text and "昆都仑" not in text, text
    assert "绵阳市" in texts[0] and "绵阳申报示范企业需要什么条件" in texts[0]
    assert "/ask 绵阳申报需要什么条件" in texts[4]
    assert texts[2] and texts[2] != "所在区县"  # a district of 绵阳 from the gazetteer


def test_its_districts_select_it(other_kb):
    for place in ("绵阳", "涪城区", "江油市", "北川", "绵阳高新区", "科技城新区"):
        assert resolve_city(other_kb, place, dt.date(2026, 11, 22)) == "mianyang", place
    a = answer(other_kb, "江油的企业申报示范单位要什么条件", dt.date(2026, 11, 22))
    assert not a.abstained and a.citations[0].measure == "mianyang"


def test_the_shipped_base_still_names_its_own(kb):
    text = help_text(SimpleNamespace(kb=kb))
    assert "包头市" in text and "威海市" in text
