"""What the intake webhooks accept: the request bodies, validated at the door."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GenericAuthor(_Strict):
    id: str = Field(min_length=1, max_length=128, description="The author's id on the platform.")
    name: str | None = Field(default=None, max_length=128, description="Display name.")
    residence: str | None = Field(default=None, max_length=128, description="Stated residence.")


class GenericGeo(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class GenericPost(_Strict):
    """A post relayed by another platform (WeChat, Douyin, a web form, a Weibo relay)."""

    id: str = Field(min_length=1, max_length=128, description="The post's id on its platform.")
    platform: str = Field(
        default="generic",
        pattern=r"^[a-z0-9_]{1,32}$",
        description="Where the citizen posted it; replies go back there.",
    )
    account: str = Field(
        min_length=1,
        max_length=64,
        description="The matrix account it was sent to, e.g. @新疆检察.",
    )
    author: GenericAuthor
    text: str = Field(min_length=1, max_length=5000, description="What the citizen wrote.")
    created_at: AwareDatetime | None = Field(default=None, description="When it was posted.")
    geo: GenericGeo | None = None
