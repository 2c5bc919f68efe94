"""What the directory adds to the divisions file: confirmed facts, patterns and the texts that
say what is inferred (copied into the YAML's ``system``). Data for ``build_directory.py``."""

from __future__ import annotations

# Handles domain.md (and the sources behind it) confirm; the only ones marked verified.
VERIFIED_HANDLES = {
    "@新疆检察": "S9",
    "@博州检察": "S10",
    "@博乐检察": "S11",
    "@喀什检察": "S11",
    "@伽师检察": "S11",
}
# Named in the article (S9) as matrix accounts, but whose owner is not confirmed.
ARTICLE_HANDLES = {"@乌鲁木齐检察", "@米东检察"}

# County procuratorates whose existence a source confirms (the divisions file's notes).
CONFIRMED_COUNTY_PROCURATORATES = {
    "652701": "S11",
    "653129": "S11",
    "654201": "S20",
    "654021": "S19",
}

# "阿地区" is listed as ambiguous without codes ("阿克苏地区 or 阿勒泰地区 - ask").
EXTRA_AMBIGUOUS = {"阿地区": ("652900", "654300")}

DEPARTMENTS = [
    ("criminal", "刑事检察"),
    ("civil", "民事检察"),
    ("administrative", "行政检察"),
    ("public_interest", "公益诉讼检察"),
    ("complaints", "控告申诉检察"),
    ("minors", "未成年人检察"),
    ("service_center", "12309检察服务中心"),
]

# Partner agencies by level: (kind, suffix at region level, suffix at prefecture, at county).
PARTNER_SUFFIXES = [
    ("police", "公安厅", "公安局", "公安局"),
    ("court", "高级人民法院", "中级人民法院", "人民法院"),
    ("labour_inspection", "劳动保障监察总队", "劳动保障监察支队", "劳动保障监察大队"),
    ("human_resources", "人力资源和社会保障厅", "人力资源和社会保障局", "人力资源和社会保障局"),
    ("culture_tourism", "文化和旅游厅", "文化体育广播电视和旅游局", "文化体育广播电视和旅游局"),
    ("health", "卫生健康委员会", "卫生健康委员会", "卫生健康委员会"),
    ("housing", "住房和城乡建设厅", "住房和城乡建设局", "住房和城乡建设局"),
    ("civil_affairs", "民政厅", "民政局", "民政局"),
    ("market_regulation", "市场监督管理局", "市场监督管理局", "市场监督管理局"),
]

RAILWAY = [
    {
        "id": "railway-urumqi",
        "name": "乌鲁木齐铁路运输检察分院",
        "tier": "prefecture",
        "parent": "xj",
        "police": "乌鲁木齐铁路公安局",
        "court": "乌鲁木齐铁路运输中级法院",
        "source": ["S16"],
    },
    {
        "id": "railway-urumqi.urumqi",
        "name": "乌鲁木齐铁路运输检察院",
        "tier": "county",
        "parent": "railway-urumqi",
        "police": "乌鲁木齐铁路公安处",
        "court": "乌鲁木齐铁路运输法院",
        "source": ["S17"],
    },
    {
        "id": "railway-urumqi.korla",
        "name": "库尔勒铁路运输检察院",
        "tier": "county",
        "parent": "railway-urumqi",
        "police": "库尔勒铁路公安处",
        "court": "库尔勒铁路运输法院",
        "source": ["S18"],
    },
]

TREE = [
    "xj (新疆维吾尔自治区人民检察院, kind region) is the root of the local matrix.",
    "Prefecture-level units hang under xj. 阿克苏, 喀什 and 和田 (地区) are kind branch: 分院 of "
    "the regional procuratorate (喀什 confirmed S11, 阿克苏 partly S12, 和田 by analogy).",
    "塔城地区 (654200) and 阿勒泰地区 (654300) are kind branch, tier prefecture, parent 654000: "
    "branches of the 伊犁州 procuratorate (伊犁州 is 副省级, S6). Their counties hang under the "
    "branch, so 塔城市's chain is xj → 654000 → 654200 → 654201.",
    "County-level units hang under their prefecture-level unit; 伊犁州直 counties under 654000.",
    "xpcc (新疆生产建设兵团人民检察院, kind xpcc, tier region) is a second root; the region-direct "
    "cities run with XPCC divisions (师市合一) hang under it as xpcc-<code>, tier prefecture "
    "(the 师-level procuratorate of the city).",
    "railway-urumqi (乌鲁木齐铁路运输检察分院, kind railway, tier prefecture) hangs under xj with "
    "its basic railway procuratorates below it; railway units have no jurisdiction codes.",
]

INFERRED = [
    "Procuratorate names follow the standard pattern '<division>人民检察院' unless name_status is "
    "confirmed; 分院 names of 阿克苏/和田 are by analogy with 喀什; the 塔城/阿勒泰 branch names "
    "are unconfirmed.",
    "Weibo handles other than the verified ones follow the pattern @<short name>检察 "
    "(weibo.source 'pattern') and are unverified; @乌鲁木齐检察 and @米东检察 are named in the "
    "article (weibo.source 'article') but unverified. Railway units have no handle.",
    "Partner agencies are generated from name patterns (partners.*.inferred true).",
    "Departments are one default list for all units, not per-unit facts.",
    "XPCC city procuratorate names ('新疆生产建设兵团<师><city>人民检察院') and their place at "
    "tier prefecture are inferred (example: 第三师图木舒克市检察院, S15).",
    "The railway tree (分院 under xj; 乌鲁木齐 and 库尔勒 railway procuratorates under the 分院) "
    "is inferred from S16-S18; other railway procuratorates may exist.",
    "岑岭县 (653132) and 草湖市 (659013) come from secondary sources only (S4): "
    "status unconfirmed.",
    "和康县 and 和安县 (2024) are confirmed divisions, but their own procuratorates are not: they "
    "may still be served by 皮山县 / 和田县 procuratorates (name_status unconfirmed).",
    "The article counts 119 matrix accounts (S9); this directory lists one unit per division "
    "plus XPCC and railway units, so the numbers differ.",
]
