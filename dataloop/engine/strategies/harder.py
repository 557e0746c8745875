"""harder: harder variants of problems the student already solves (Lion)."""

from __future__ import annotations

from dataloop.engine.strategies.llm2llm import LLM2LLM
from dataloop.engine.strategy import RequestContext
from dataloop.schema import Example


class Harder(LLM2LLM):
    """For each seed example the student solves, one harder problem of the same skill.

    Lion (Jiang et al., 2023, arXiv:2305.12870) runs an adversarial loop of imitation,
    discrimination (the teacher identifies instructions the student handles badly) and
    generation (the teacher writes new hard instructions), so the data keeps moving to where
    the student falls short. This strategy applies that generation step to problems the student
    now answers correctly: it asks for a harder one in the same skill and format (more steps,
    larger numbers, longer inputs), so a skill mastered at one level gets data at the next. The
    task's ``verify`` checks each candidate (and may recompute its answer), as for
    ``new-question``; whether it is actually harder is the teacher's judgement, not checked.

    Prompt ``i`` is about solved seed ``i`` of the rotation
    (:attr:`~dataloop.engine.strategy.RequestContext.rotation`, least used first), one new
    problem per prompt; a request naming ``seed_ids`` builds on those (the policy chose them).
    A skill with no solved seed cannot be served.

    Where dataloop differs from Lion: there the teacher judges the student's free-form answers
    to call an instruction hard or easy; here the task's grading of the seed set decides (the
    observation's ``failures``), and only original seeds are parents.
    """

    name = "harder"
    template_dir = "harder"

    def targets(self, ctx: RequestContext) -> list[Example]:
        """Seeds of the skill the student answers correctly (or those in ``seed_ids``)."""
        if ctx.request.seed_ids:
            return ctx.rotation
        failed = {f.example.id for f in ctx.failures}
        return [e for e in ctx.rotation if e.id not in failed]
