"""llm2llm: new examples like each seed example the student got wrong (LLM2LLM)."""

from __future__ import annotations

from dataloop.engine.parsing import Parsed, parse_pairs
from dataloop.engine.strategy import Prompt, RequestContext, Strategy
from dataloop.schema import Example


class LLM2LLM(Strategy):
    """Error targeting: for each failed seed example, new examples similar to it.

    As in LLM2LLM (Lee et al., 2024): the student is evaluated on the seed (train) set, and
    each example it gets wrong is shown to the teacher, who writes similar ones. Only original
    seed examples are ever parents, never earlier synthetic data, so errors do not compound;
    repeated every iteration, it follows the student's current failures. The task's ``verify``
    may recompute a wrong answer, as for ``new-question``.
    """

    name = "llm2llm"
    template_dir = "llm2llm"

    def targets(self, ctx: RequestContext) -> list[Example]:
        """Failed seed examples of the skill (those in ``seed_ids`` if the request names any).

        A named seed the student gets right is still used: the policy chose it. Anything not in
        the task's own seed set (i.e. generated data) is never a parent.
        """
        seeds = {e.id: e for e in ctx.seeds}
        if ctx.request.seed_ids:
            return [seeds[i] for i in ctx.request.seed_ids if i in seeds]
        return [f.example for f in ctx.failures if f.example.id in seeds]

    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        targets = self.targets(ctx)
        target = targets[index % len(targets)]
        said = {f.example.id: f.prediction for f in ctx.failures}
        shown = self.demos(ctx, index, [e for e in ctx.seeds if e.id != target.id])
        return self.render(
            ctx,
            count,
            examples=shown,
            parents=[target],
            target=target,
            prediction=said.get(target.id),
        )

    def read(self, text: str, prompt: Prompt, cut: bool) -> Parsed:
        return parse_pairs(self.prefix(prompt) + text, cut)
