"""new-question: new questions (and answers) for a skill, written from a few of its seeds."""

from __future__ import annotations

from dataloop.engine.parsing import Item, Parsed, parse_pairs
from dataloop.engine.strategy import Prompt, RequestContext, Strategy


class NewQuestion(Strategy):
    """New questions of a skill with their answers, modelled on a sample of its seed examples.

    "New question" in Chan et al. (2024): the teacher writes new queries and their answers
    from seed examples. The task's ``verify`` may recompute (relabel) a wrong answer.
    """

    name = "new-question"
    template_dir = "new_question"

    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        # Each prompt shows a different sample of seeds, so completions do not all echo one list.
        # A request that shows failed probes takes its worked examples from them (with the
        # correct answers) first, as DataEnvGym's teacher writes from the student's errors;
        # seeds fill the rest of the shots.
        missed = self.demos(ctx, index, [f.example for f in ctx.request.failures])
        shown = missed + self.demos(ctx, index, ctx.pool())[: ctx.shots - len(missed)]
        return self.render(ctx, count, examples=shown, parents=shown)

    def read(self, text: str, prompt: Prompt, cut: bool) -> Parsed[Item]:
        return parse_pairs(self.prefix(prompt) + text, cut)
