"""refine: the teacher corrects the student's own wrong answers (Personalised Distillation)."""

from __future__ import annotations

from dataloop.engine.parsing import Item, Parsed, parse_correction
from dataloop.engine.strategies.answer_augmentation import AnswerAugmentation
from dataloop.engine.strategy import Prompt, RequestContext, multiline
from dataloop.schema import Example, Failure


class Refine(AnswerAugmentation):
    """For each seed example the student got wrong, the teacher reads the student's answer,
    says what is wrong with it (feedback) and writes a corrected answer.

    Personalised Distillation (Chen et al., 2023, arXiv:2310.18628) has the student attempt a
    task first and the teacher refine only the failed attempts, so the student learns from
    corrections of its own mistakes; UNDO (Jain et al., 2025, arXiv:2504.02521) likewise has
    the teacher refine its rationales for the student's errors. The corrected answer must be
    graded right against the seed's reference answer by the task's ``score``, exactly as the
    student is graded: for the code task that runs the seed's tests, so a correction must pass
    them. The example trained on is the seed's question with the corrected answer (PERsD's
    text-to-code form); the feedback is recorded in its provenance (``feedback``), not trained
    on. Dedup is on (question, answer), as for answer-augmentation: where an answer is a single
    value (arithmetic) the only correct one is the seed's own, a duplicate of the seed; the
    strategy pays where answers are worked solutions (math, code).

    Prompt ``i`` corrects attempt ``i`` (in the order of
    :attr:`~dataloop.engine.strategy.RequestContext.rotation`, least used first): the failed
    seeds of the skill from the observation, and any the request carries in ``failures`` that
    are seeds; a request naming ``seed_ids`` corrects only those. Failed feedback probes are
    held out of training (the engine's decontamination would reject them), so a probe in the
    request is shown in the prompt but never corrected.
    """

    name = "refine"
    template_dir = "refine"

    def attempts(self, ctx: RequestContext) -> list[Failure]:
        """The student's wrong answers to seed examples this request may correct, in order."""
        order = {e.id: i for i, e in enumerate(ctx.rotation)}
        found: dict[str, Failure] = {}
        for failure in [*ctx.request.failures, *ctx.failures]:
            if failure.example.id in order:
                found.setdefault(failure.example.id, failure)
        return sorted(found.values(), key=lambda f: order[f.example.id])

    def targets(self, ctx: RequestContext) -> list[Example]:
        return [f.example for f in self.attempts(ctx)]

    def prompt(self, ctx: RequestContext, index: int, count: int) -> Prompt:
        attempts = self.attempts(ctx)
        attempt = attempts[index % len(attempts)]
        target = attempt.example
        shown = self.demos(ctx, index, [e for e in ctx.seeds if e.id != target.id])
        # A base model writes a feedback line and an "A:" line (or closes its JSON line).
        stop: tuple[str, ...] = ()
        if self.kind == "base":
            stop = ("\n",) if multiline([*shown, target]) else ("\nQ:", "\n\n")
        return self.render(
            ctx,
            1,
            examples=shown,
            parents=[target],
            target=target,
            prediction=attempt.prediction,
            stop=stop,
        )

    def read(self, text: str, prompt: Prompt, cut: bool) -> Parsed[Item]:
        opened = self.prefix(prompt)
        if opened.startswith("{"):  # a base prompt of JSON lines, left open at "feedback"
            return parse_correction(opened + text, cut, json_only=True)
        return parse_correction(opened + text, cut, json_only=self.kind == "chat")

    def parse(
        self, text: str, ctx: RequestContext, prompt: Prompt, cut: bool = False
    ) -> Parsed[Example]:
        """Corrected answers to the target's question, the feedback in their provenance."""
        parsed = self.read(text, prompt, cut)
        out: Parsed[Example] = Parsed(dropped=parsed.dropped)
        for item in parsed.items:
            example = self.example(ctx, prompt, prompt.parents[0].question, item["answer"])
            feedback = {"feedback": item.get("feedback")}
            out.items.append(
                example.model_copy(
                    update={"provenance": example.provenance.model_copy(update=feedback)}
                )
            )
        return out
