"""A draft of a measure's self-check rules (rules/<id>.yaml) from its conditions article.

`draft(measure)` finds the article that lists the conditions to apply (应具备以下基本条件, 应当同时符合以下条件),
reads each item into a condition citing its article and item, maps what it can onto the facts of
rules/facts.yaml (注册, 制造业企业, 独立法人, 经营N年以上, 事故, 违法, 黑名单, 服务部门, 项目不少于N个, 收入占比,
增长率 …) and leaves the rest to the bureau's review (judged_by: review). Numbers are read as the measure
writes them: 以上, 不低于, 不少于, 达到 and （含） include the number (民法典第一千二百五十九条, or the measure's own
definition article), 超过/高于 without （含） exclude it. Items that ask for one of several sub-items
(满足以下其中一项, 之一) become an any_of group. Every condition, and the file, is marked `review: true`:
the chat does not use the rules until an operator has checked them and removed the flags
(rules.engine.available()).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.numerals import NUMERAL_CHARS, cn_to_int

_N = rf"([{NUMERAL_CHARS}\d]+(?:\.\d+)?)"
CONDITIONS_RE = re.compile(r"(应|须|需|应当|必须)(当)?(同时)?(具备|符合|满足)[^。]{0,12}条件")
ANY_OF_RE = re.compile(r"其中(任)?一项|之一|任一|任意一项|至少一项|一项即可|一项条件")
INCLUSIVE_WORDS = ("以上", "不低于", "不少于", "达到", "及以上", "（含）", "(含)")
EXCLUSIVE_WORDS = ("超过", "高于", "大于", "多于")


@dataclass
class Draft:
    measure: str
    article: int | None
    data: dict
    unmapped: list[str] = field(default_factory=list)  # items left to the bureau's review (judged_by: review)


def _number(text: str) -> float | None:
    v = text.strip()
    try:
        return float(v) if "." in v else float(int(v))
    except ValueError:
        n = cn_to_int(v)
        return float(n) if n is not None else None


def _inclusive(clause: str, after: str, definitions: dict[str, bool]) -> bool:
    """Whether a limit includes its number: （含） right after it, or the comparison word's meaning."""
    if re.match(r"\s*[%％]?\s*[（(]含[)）]", after):
        return True
    for word in EXCLUSIVE_WORDS:
        if word in clause:
            return definitions.get(word, False)
    return True  # 以上, 不低于, 不少于, 达到: including the number


def read_definitions(articles: list[tuple[int, str]]) -> dict[str, bool]:
    """A measure's own definition of its comparison words (“以上”“不低于”均含本数，“超过”不含本数)."""
    out: dict[str, bool] = {}
    for _, text in articles:
        for m in re.finditer(r"((?:[“\"][^”\"]{1,4}[”\"][、，]?)+)\s*(?:均|都)?(含|包括|不含|不包括)本数", text):
            inclusive = not m.group(2).startswith("不")
            for word in re.findall(r"[“\"]([^”\"]{1,4})[”\"]", m.group(1)):
                out[word] = inclusive
    return out


def _limit(clause: str, pattern: str, definitions: dict[str, bool]) -> tuple[float, bool] | None:
    m = re.search(pattern + rf"[^。；，\d]{{0,8}}?{_N}\s*", clause)
    if not m:
        return None
    value = _number(m.group(1))
    if value is None:
        return None
    return value, _inclusive(clause[m.start():m.end() + 6], clause[m.end():], definitions)


def _num_test(fact: str, limit: tuple[float, bool]) -> dict:
    value, inclusive = limit
    value = int(value) if value == int(value) else value
    return {"fact": fact, "at_least": value} if inclusive else {"fact": fact, "above": value}


# (fact, kind, pattern): kind is "true"/"false" for a yes/no fact, or a number pattern for a limit
def _tests(clause: str, definitions: dict[str, bool]) -> list[tuple[dict, str]]:
    """The fact tests one clause states, each with the words it was read from."""
    out: list[tuple[dict, str]] = []
    if re.search(r"(本市|我市|市内|市域内|行政区域内|[\u4e00-\u9fff]{1,4}市内?)(依法)?(注册|登记)", clause):
        out.append(({"fact": "registered_in", "in_city": True}, "注册地"))
    if re.search(r"制造(业)?企业", clause) and not re.search(r"示范企业", clause.split("制造")[0][-2:]):
        out.append(({"fact": "is_manufacturer", "is": True}, "制造业企业"))
    if "独立法人" in clause:
        out.append(({"fact": "independent_legal_person", "is": True}, "独立法人资格"))
    m = re.search(rf"(?:经营|成立|注册|运营)[^。；，]{{0,6}}?{_N}\s*(?:个)?(?:完整)?(?:会计)?年", clause)
    if m and _number(m.group(1)):
        out.append(({"fact": "established_on", "years_before": int(_number(m.group(1)))}, "经营年限"))
    negated = re.search(r"(未|无|没有|不存在|未曾)", clause)
    window = re.search(rf"近\s*{_N}\s*年", clause)
    two_years = window is None or _number(window.group(1)) == 2  # the *_2y facts cover the last two years
    if negated and two_years and re.search(r"(重大|较大)[^。；]{0,20}事故", clause):
        out.append(({"fact": "major_accident_2y", "is": False}, "重大事故"))
    if negated and two_years and re.search(r"(违规违法|违法违规|违法行为|违规行为)", clause) and "审查" not in clause:
        out.append(({"fact": "major_violation_2y", "is": False}, "重大违规违法"))
    if re.search(r"涉嫌违法|接受[^。；]{0,6}审查|立案调查", clause):
        out.append(({"fact": "illegal_or_under_investigation", "is": False}, "违法或接受审查"))
    if negated and two_years and "环境污染" in clause and "通报" in clause:
        out.append(({"fact": "env_pollution_notice_2y", "is": False}, "环境污染通报"))
    if re.search(r"黑名单|严重失信|失信(被执行人|主体)", clause):
        out.append(({"fact": "blacklisted", "is": False}, "失信黑名单"))
    if re.search(r"服务(性)?部门|服务(性)?公司|服务机构", clause):
        out.append(({"fact": "has_service_unit", "is": True}, "服务部门"))
    limit = _limit(clause, r"项目(?:数量)?(?:不少于|不低于|达到|超过|多于)?", definitions) if "项目" in clause else None
    if limit:
        out.append((_num_test("service_projects_3y", limit), "服务型制造项目数"))
    if re.search(r"服务(性|型)?(制造)?收入", clause) and re.search(r"占|比重|比例", clause):
        limit = _limit(clause, r"(?:比重|比例|占比)", definitions)
        if limit:
            out.append((_num_test("service_revenue_share", limit), "服务收入占比"))
    if re.search(r"(主营业务|营业)收入[^。；]{0,12}增长", clause):
        limit = _limit(clause, r"增长", definitions)
        if limit:
            out.append((_num_test("revenue_growth", limit), "营业收入增长"))
    if re.search(r"利润[^。；]{0,12}增长", clause) and "收入" not in clause.split("利润")[0][-6:]:
        limit = _limit(clause, r"增长", definitions)
        if limit:
            out.append((_num_test("profit_growth", limit), "利润增长"))
    if re.search(r"服务(管理)?体系健全|持续的服务型制造投入|服务型制造投入", clause):
        out.append(({"fact": "sound_service_system", "is": True}, "服务体系与投入"))
    if re.search(r"盈利能力|经营规模", clause):
        out.append(({"fact": "profitable", "is": True}, "经营规模与盈利"))
    return out


def find_conditions_articles(measure) -> list[int]:
    """The articles listing the conditions for a 示范企业 (not a platform or a project): the first one, and
    those right after it that add to it (除应当符合第六条规定的条件外，还应满足以下条件之一)."""
    candidates = []
    for number, art in sorted(measure.articles.items()):
        head = art.paragraphs[0].text if art.paragraphs else ""
        if CONDITIONS_RE.search(head):
            other = re.search(r"示范(平台|项目)", head + getattr(art, "section_title", "")) and "示范企业" not in head
            candidates.append((bool(other), number))
    if not candidates:
        return []
    first = min(candidates)[1]
    out = [first]
    from knowledge.kb import article_refs
    for number in range(first + 1, first + 4):
        art = measure.articles.get(number)
        head = art.paragraphs[0].text if art and art.paragraphs else ""
        if art and CONDITIONS_RE.search(head) and first in article_refs(head):
            out.append(number)
        else:
            break
    return out


def find_conditions_article(measure) -> int | None:
    found = find_conditions_articles(measure)
    return found[0] if found else None


def draft(measure) -> Draft:
    """The draft rules of a kb Measure; raises ValueError when no conditions article is found."""
    numbers = find_conditions_articles(measure)
    if not numbers:
        raise ValueError(f"{measure.id}: no article lists the conditions (应具备以下条件): write rules/{measure.id}.yaml by hand")
    definitions = read_definitions([(n, a.text) for n, a in measure.articles.items()])
    conditions: list[dict] = []
    unmapped: list[str] = []
    used: list[str] = []
    for number in numbers:
        art = measure.articles[number]
        head = art.paragraphs[0].text if art.paragraphs else ""
        items = art.paragraphs[1:]
        if ANY_OF_RE.search(head) and items and all(p.level == 1 for p in items):
            # 还应满足以下条件之一: the whole list is one any_of group
            _group(conditions, unmapped, used, items, number, "", definitions)
            continue
        _items(conditions, unmapped, used, items or art.paragraphs, number, definitions)
    questions = list(dict.fromkeys(used))
    cited = "、".join(measure.cite(n) for n in numbers)
    data = {"measure": measure.id, "review": True,
            "source": f"drafted by `policybot rules draft` from {cited}: check every condition, then remove the review flags",
            "questions": questions, "conditions": conditions}
    return Draft(measure.id, numbers[0], data, unmapped)


def _items(conditions, unmapped, used, paragraphs, number, definitions) -> None:
    top = ""  # the label of the level-1 item a sub-item belongs to
    i = 0
    while i < len(paragraphs):
        p = paragraphs[i]
        label = _label(p.label)
        if p.level <= 1:
            top = label
        item = f"{top}({label})" if p.level == 2 else label
        subs = []
        if ANY_OF_RE.search(p.text):  # 满足以下其中一项: the sub-items that follow form one any_of group
            j = i + 1
            while j < len(paragraphs) and paragraphs[j].level == 2:
                subs.append(paragraphs[j])
                j += 1
        for clause in (c for c in re.split(r"(?<=[。；])", p.text) if c.strip()):
            m = ANY_OF_RE.search(clause)
            if m and subs:  # the alternatives are read below from its sub-items; what precedes still counts
                clause = re.split(r"[，,]\s*(?:且|并且|同时)?(?:必须|须|应|还应)?(?:满足|符合|具备)?以下", clause[: m.start()])[0]
            _add(conditions, unmapped, used, clause, _tests(clause, definitions), number, item)
        if subs:
            _group(conditions, unmapped, used, subs, number, top, definitions)
        i += 1 + len(subs)


def _group(conditions, unmapped, used, items, number, top, definitions) -> None:
    """One any_of condition from a list of alternatives; left to review when one of them has no fact."""
    first, last = _label(items[0].label), _label(items[-1].label)
    nested = items[0].level == 2
    span = f"{top}({first})-({last})" if nested else f"{first}至{last}"
    texts = [p.text.rstrip("；。") for p in items]
    tests = [_tests(p.text, definitions) for p in items]
    label = "满足其一：" + "；或".join(texts)
    if all(tests):
        group = [t[0] for ts in tests for t in ts]
        used.extend(g["fact"] for g in group)
        conditions.append({"id": f"any_of_{len(conditions) + 1}", "label": label, "article": number, "item": span,
                           "test": {"any_of": group}, "review": True})
    else:
        unmapped.extend(t for t, ts in zip(texts, tests) if not ts)
        conditions.append({"id": f"review_{len(conditions) + 1}", "label": label, "article": number, "item": span,
                           "judged_by": "review", "review": True})


def _label(label: str | None) -> str:
    return (label or "").strip("（）().．、 ") if label else ""


def _add(conditions: list[dict], unmapped: list[str], used: list[str], clause: str, tests: list[tuple[dict, str]],
         article: int, item: str) -> None:
    text = clause.strip().rstrip("；。")
    if not text:
        return
    if not tests:
        unmapped.append(text)
        conditions.append({"id": f"review_{len(conditions) + 1}", "label": text, "article": article, "item": item or None,
                           "judged_by": "review", "review": True})
        return
    for test, words in tests:
        if any(c.get("test") == test for c in conditions):
            continue  # stated twice (制造业企业 in two items): one condition
        used.append(test["fact"])
        conditions.append({"id": test["fact"], "label": f"{words}：{text}", "article": article, "item": item or None,
                           "test": test, "review": True})


def render(d: Draft) -> str:
    import yaml

    head = [f"# DRAFT eligibility rules of {d.measure}, read from article {d.article} by `policybot rules draft`.",
            "# Every condition is marked review: true, and so is the file: the chat does not use these rules until",
            "# an operator has checked each condition against the article and removed the review flags."]
    for text in d.unmapped:
        head.append(f"# left to the bureau's review (no fact for it): {text}")
    return "\n".join(head) + "\n" + yaml.safe_dump(d.data, allow_unicode=True, sort_keys=False, width=120)
