"""What a problem type's page says about it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shopstack_common.problems import ProblemType

SLUG_PATTERN = r"^[a-z]+(-[a-z]+)*$"


class ProblemTypePublic(BaseModel):
    slug: str = Field(pattern=SLUG_PATTERN, examples=["out-of-stock"])
    status: int = Field(ge=400, le=599, description="The HTTP status it is answered with.")
    title: str
    description: str = Field(description="What it means for a client, and what to do.")
    type: str = Field(description="The `type` member of the problems of this kind.")

    @classmethod
    def of(cls, problem: ProblemType) -> ProblemTypePublic:
        return cls(
            slug=problem.slug,
            status=problem.status,
            title=problem.title,
            description=problem.description,
            type=problem.type_uri,
        )


class ProblemTypeList(BaseModel):
    items: list[ProblemTypePublic] = Field(description="Every problem type, by slug.")
