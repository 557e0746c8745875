"""answer-augmentation: new answers to the skill's existing seed questions."""

from __future__ import annotations

from dataloop.engine.parsing import Item, Parsed, parse_answer
from dataloop.engine.strategy import Check, Prompt, RequestContext, Strategy
from dataloop.schema import Example, example_id


class AnswerAugmentation(Strategy):
    """New teacher answers to the seed questions; those the task grades right are kept.

    "Answer augmentation" in Chan et al. (2024): new responses (e.g. fresh solutions) to
    existing queries. One answer per prompt; prompt ``i`` asks seed ``i`` of the rotation
    (:attr:`~dataloop.engine.strategy.RequestContext.rotation`), so a request's budget is spread
    over all the skill's seeds, least used first, before any question is asked twice; a repeat
    gets a different few-shot draw and sampling seed. An answer is kept when the task's ``score``
    grades it correct against the seed's reference answer, exactly as the student is graded;
    it is never relabelled, since a recomputed answer would only copy the seed's. Dedup is on
    (question, answer): the question is the seed's own, so only a new answer is new data.
    """

    name = "answer-augmentation"
    template_dir = "answer_augmentation"
    dedup_on_answer = True
    voted = False  # its check already grades each answer against the seed's
    solves = True  # the engine's self-consistency votes ask it by default (engine.solver)

    def per_prompt(self, per_query: int) -> int:
        return 1

    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        pool = self.targets(ctx)
        return self.solve(ctx, pool[index % len(pool)], index)

    def solve(self, ctx: RequestContext, target: Example, index: int) -> Prompt:
        """A prompt for one fresh answer to ``target``'s question (also the engine's votes)."""
        shown = self.demos(ctx, index, [e for e in ctx.seeds if e.id != target.id])
        # A base model answers on the line after "A:" (or in the open JSON line): one line.
        stop = ("\n",) if self.kind == "base" else ()
        return self.render(ctx, 1, examples=shown, parents=[target], target=target, stop=stop)

    def read(self, text: str, prompt: Prompt, cut: bool) -> Parsed[Item]:
        opened = self.prefix(prompt)
        if opened.startswith("{"):  # a base prompt of JSON lines, left open at "answer"
            return parse_answer(opened + text, cut, json_only=True)
        return parse_answer(text, cut, json_only=self.kind == "chat")

    def complete(self, item: dict[str, str], prompt: Prompt) -> tuple[str, str] | None:
        return prompt.parents[0].question, item["answer"]

    def example(self, ctx: RequestContext, prompt: Prompt, question: str, answer: str) -> Example:
        return _answer_id(super().example(ctx, prompt, question, answer))

    def answer_holds(self, candidate: Example, ctx: RequestContext, prompt: Prompt) -> bool:
        """Graded right against the seed's answer (``score``), as the student is graded."""
        return ctx.task.score(prompt.parents[0], ctx.task.target(candidate))

    def check(
        self, candidate: Example, ctx: RequestContext, prompt: Prompt
    ) -> tuple[Check, Example]:
        check, example = super().check(candidate, ctx, prompt)
        # verify may normalise the answer's form; keep that, under this answer's own id.
        return check, _answer_id(example) if check == "verified" else example


def _answer_id(example: Example) -> Example:
    """Two answers to one question are two examples: the id covers the answer too."""
    key = f"{example.question}\x00{example.answer}"
    return example.model_copy(update={"id": example_id(example.skill, key)})
