"""The workbench's words, in Simplified Chinese and English (`?lang=en`, kept in a cookie): one
module per language (words_zh.py, words_en.py), each page's words in a block of its own."""

from __future__ import annotations

from fengqiao.services.workbench.words_en import EN
from fengqiao.services.workbench.words_zh import ZH

LANGS = ("zh", "en")
LABELS = {"zh": ZH, "en": EN}
