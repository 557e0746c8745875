"""llm2llm: one new example like each seed example the student got wrong (LLM2LLM)."""

from __future__ import annotations

from dataloop.engine.parsing import Item, Parsed, parse_pairs
from dataloop.engine.strategy import Prompt, RequestContext, Strategy, multiline
from dataloop.schema import Example


class LLM2LLM(Strategy):
    """Error targeting: for each failed seed example, one new example similar to it.

    As in LLM2LLM (Lee et al., 2024, arXiv:2403.15042): the student is evaluated on the seed
    (train) set, and each example it gets wrong is shown to the teacher, who writes one similar
    example (``instructions_per_seed_task: 1`` in ``GSM8K/config.yaml`` of the authors' code).
    Each prompt asks for exactly one, so no candidate is paid for and dropped. Only original
    seed examples are ever parents, never earlier synthetic data, so errors do not compound;
    repeated every iteration, it follows the student's current failures. The student's wrong
    answer is not shown (the authors' prompt template has no slot for it) unless
    ``engine.show_student_answer`` is set. The task's ``verify`` may recompute a wrong answer,
    as for ``new-question``.
    """

    name = "llm2llm"
    template_dir = "llm2llm"

    def per_prompt(self, per_query: int) -> int:
        return 1

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
        # A base model continues the list: stop after its one item (a JSON line, or a Q/A pair).
        stop: tuple[str, ...] = ()
        if self.kind == "base":
            stop = ("\n",) if multiline([target]) else ("\nQ:", "\n\n")
        return self.render(
            ctx,
            count,
            examples=shown,
            parents=[target],
            target=target,
            prediction=said.get(target.id) if ctx.show_student_answer else None,
            stop=stop,
        )

    def read(self, text: str, prompt: Prompt, cut: bool) -> Parsed[Item]:
        return parse_pairs(self.prefix(prompt) + text, cut)
