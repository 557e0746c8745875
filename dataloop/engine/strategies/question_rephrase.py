"""question-rephrase: seed questions reworded, keeping their answers."""

from __future__ import annotations

from dataloop.engine.parsing import Item, Parsed, parse_questions
from dataloop.engine.strategy import Prompt, RequestContext, Strategy, multiline
from dataloop.schema import Example


class QuestionRephrase(Strategy):
    """Rewordings of seed questions that keep their answers, one seed question per prompt.

    Prompt ``i`` rewords seed ``i`` of the rotation
    (:attr:`~dataloop.engine.strategy.RequestContext.rotation`): least used seeds first.

    "Question rephrase" in Chan et al. (2024): the teacher rewrites an existing query; the
    response (here, the seed's answer) is kept. Where the task can tell (its ``check_answer``),
    a rewording whose answer no longer holds is rejected, never relabelled.
    """

    name = "question-rephrase"
    template_dir = "question_rephrase"

    def per_prompt(self, per_query: int) -> int:
        # A base model adds about one rewording per prompt; a chat model lists ``count``.
        return 1 if self.kind == "base" else per_query

    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        pool = self.targets(ctx)
        target = pool[index % len(pool)]
        shown = self.demos(ctx, index, [e for e in ctx.seeds if e.id != target.id])
        # The base prompt is a list under "Answer <a>:"; the next heading ends the list. With
        # multi-line examples it is JSON lines, the last one open: its end is the rewording's.
        stop: tuple[str, ...] = ()
        if self.kind == "base":
            stop = ("\n",) if multiline([*shown, target]) else ("\nAnswer", "\n\n")
        return self.render(ctx, count, examples=shown, parents=[target], target=target, stop=stop)

    def read(self, text: str, prompt: Prompt, cut: bool) -> Parsed[Item]:
        return parse_questions(self.prefix(prompt) + text, cut)

    def complete(self, item: dict[str, str], prompt: Prompt) -> tuple[str, str] | None:
        return item["question"], prompt.parents[0].answer

    def answer_holds(self, candidate: Example, ctx: RequestContext, prompt: Prompt) -> bool:
        """Still the seed's answer, where the task can tell (``check_answer``)."""
        return ctx.task.check_answer(candidate) is not False
