"""Building the knowledge base from a source folder: a third city is data, bad data is refused clearly."""
import shutil

import pytest
import yaml

from knowledge import kb as kbmod
from knowledge.qa import answer
from conftest import TODAY


def _source(tmp_path, with_examples=True):
    src = tmp_path / "knowledge"
    (src / "measures").mkdir(parents=True)
    for name in ("lexicon.yaml", "gazetteer.yaml") + (("near_misses.yaml",) if with_examples else ()):
        shutil.copy(kbmod.SOURCE_DIR / name, src / name)
    for name in ("weihai.txt", "weihai.yaml") + (("weihai.questions.yaml",) if with_examples else ()):
        shutil.copy(kbmod.SOURCE_DIR / "measures" / name, src / "measures" / name)
    return src


def test_a_third_city_is_a_text_and_a_metadata_file(tmp_path):
    src = _source(tmp_path)
    text = (kbmod.SOURCE_DIR / "measures" / "weihai.txt").read_text(encoding="utf-8").replace("威海", "烟台")
    (src / "measures" / "yantai.txt").write_text(text, encoding="utf-8")
    meta = yaml.safe_load((kbmod.SOURCE_DIR / "measures" / "weihai.yaml").read_text(encoding="utf-8"))
    meta.update(id="yantai", title=meta["title"].replace("威海", "烟台"), document_number=None)
    meta["city"] = {"name": "烟台市", "short": "烟台", "aliases": ["烟台市", "烟台"], "districts": ["芝罘区", "芝罘"]}
    (src / "measures" / "yantai.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    kb = kbmod.build(src, tmp_path / "kb.pickle", learn=False)
    assert set(kb.measures) == {"weihai", "yantai"}
    a = answer(kb, "芝罘区的示范企业多久复核一次", TODAY)
    assert not a.abstained and a.citations[0].measure == "yantai" and a.citations[0].article == 18
    assert "烟台" not in kb.other_places  # a covered city is never "another city"
    # its self-check waits for rules/yantai.yaml, and says so instead of failing
    from handlers.context import Context
    from handlers.core import handle
    from handlers.message import Incoming
    ctx, state = Context(kb, TODAY), {}
    for line in ("自测", "芝罘区"):
        result = handle(Incoming("console", "u", line), state, ctx)
        state = result.state
    assert "还没有整理自测规则" in result.replies[0].text and "check" not in state


def test_without_example_questions_it_still_answers(tmp_path):
    kb = kbmod.build(_source(tmp_path, with_examples=False))
    assert kb.examples is None
    a = answer(kb, "威海示范企业多久复核一次", TODAY)
    assert not a.abstained and a.citations[0].article == 18


def test_a_question_declined_for_one_city_is_declined_only_there(tmp_path):
    src = _source(tmp_path)
    text = (kbmod.SOURCE_DIR / "measures" / "weihai.txt").read_text(encoding="utf-8").replace("威海", "烟台")
    (src / "measures" / "yantai.txt").write_text(text, encoding="utf-8")
    meta = yaml.safe_load((kbmod.SOURCE_DIR / "measures" / "weihai.yaml").read_text(encoding="utf-8"))
    meta.update(id="yantai", title=meta["title"].replace("威海", "烟台"), document_number=None)
    meta["city"] = {"name": "烟台市", "short": "烟台", "aliases": ["烟台市", "烟台"], "districts": []}
    (src / "measures" / "yantai.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    question = "评上以后隔几年复查一回"
    with open(src / "near_misses.yaml", "a", encoding="utf-8") as fh:  # were they for any city, 威海 would decline it
        fh.write(f"- 烟台的示范企业{question}\n- {{q: {question}, city: yantai}}\n- 青岛的示范企业{question}\n")
    kb = kbmod.build(src)
    last = len(kb.examples.labels) - 1  # 青岛's is no example (the place declines it): the last is the city: one
    assert kb.examples.decline_only_for.get(last - 1) == kb.examples.decline_only_for.get(last) == frozenset({"yantai"})
    for city in ("weihai", None):
        a = answer(kb, question, TODAY, city)
        assert not a.abstained and a.citations[0].article == 18


def test_stale_and_rebuilt(tmp_path):
    src, out = _source(tmp_path), tmp_path / "kb.pickle"
    kbmod.build(src, out, learn=False)
    assert not kbmod.is_stale(out, src)
    (src / "lexicon.yaml").write_text((src / "lexicon.yaml").read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert kbmod.is_stale(out, src)
    assert kbmod.load(out, src).fingerprint == kbmod.fingerprint(src)


@pytest.mark.parametrize("break_it,message", [
    (lambda s: (s / "measures" / "weihai.txt").unlink(), "no text file"),
    (lambda s: (s / "measures" / "weihai.yaml").write_text("id: other\n", encoding="utf-8"), "does not match"),
    (lambda s: (s / "measures" / "weihai.yaml").write_text("id: weihai\nin_force_until: soon\n", encoding="utf-8"),
     "must be a date"),
    (lambda s: (s / "measures" / "weihai.txt").write_text("标题\n第一条 甲。\n第三条 乙。\n", encoding="utf-8"),
     "follows article"),
    (lambda s: (s / "measures" / "weihai.questions.yaml").write_text("99: [问题]\n", encoding="utf-8"), "no article"),
])
def test_bad_sources_are_refused_with_a_reason(tmp_path, break_it, message):
    src = _source(tmp_path)
    break_it(src)
    with pytest.raises(kbmod.KnowledgeBaseError, match=message):
        kbmod.build(src, learn=False)


def test_a_question_declined_for_another_level_or_province_is_declined_only_when_named(tmp_path):
    src = _source(tmp_path)
    with open(src / "near_misses.yaml", "a", encoding="utf-8") as fh:
        fh.write("- 山东省级服务型制造示范企业申报要满足哪些条件\n")
    kb = kbmod.build(src, learn=False)
    last = len(kb.examples.labels) - 1
    assert kb.examples.decline_only_naming.get(last) == frozenset({"山东省", "省级"})
    a = answer(kb, "威海服务型制造示范企业申报要满足哪些条件", TODAY)
    assert not a.abstained and a.citations[0].article == 12
    assert answer(kb, "省级服务型制造示范企业申报要满足哪些条件", TODAY).abstained


@pytest.mark.parametrize("name,text,message", [
    ("lexicon.yaml", "synonyms:\n  复审: 复核\n  复审: 审核\n", "duplicate key '复审'"),
    ("measures/weihai.lexicon.yaml", "synonyms:\n  复审: 复核\n", "already in lexicon.yaml"),
    ("measures/weihai.lexicon.yaml", "topics: {}\n", "only synonyms, domain_terms"),
    ("measures/weihai.yaml", "id: weihai\nid: weihai\n", "duplicate key 'id'"),
])
def test_knowledge_yaml_with_a_key_twice_or_misplaced_wording_is_refused(tmp_path, name, text, message):
    src = _source(tmp_path)
    (src / name).write_text(text, encoding="utf-8")
    with pytest.raises(kbmod.KnowledgeBaseError, match=message):
        kbmod.build(src, learn=False)


def test_a_measures_own_wording_is_merged_and_the_shared_lexicon_names_no_city():
    from knowledge import yamlio
    shared = yamlio.load(kbmod.SOURCE_DIR / "lexicon.yaml")
    text = (kbmod.SOURCE_DIR / "lexicon.yaml").read_text(encoding="utf-8")
    for path in kbmod.SOURCE_DIR.glob("measures/*.yaml"):
        if path.name.endswith((kbmod.QUESTIONS_SUFFIX, kbmod.LEXICON_SUFFIX)):
            continue
        city = yamlio.load(path)["city"]
        for name in [city["short"], *(city.get("districts") or [])]:
            assert name not in text, f"lexicon.yaml names {name}: that belongs in measures/<id>.lexicon.yaml"
    own = yamlio.load(kbmod.SOURCE_DIR / "measures" / "weihai.lexicon.yaml")
    merged = kbmod._with_measure_lexicons(shared, kbmod.SOURCE_DIR, {"weihai": None})
    assert set(own["synonyms"]) <= set(merged["synonyms"]) and not set(own["synonyms"]) & set(shared["synonyms"])
