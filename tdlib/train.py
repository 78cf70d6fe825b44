"""Training the student with the Hugging Face ``Trainer``: Translate-Distill and Translate-Train.

Each training example (:class:`tdlib.examples.TrainingExamples`) is one English query with n
translated passages: for Translate-Distill (``method="distill"``) with the teacher's scores as the target
of :func:`tdlib.losses.kl_distillation`; for Translate-Train (``method="translate-train"``) a judged
positive first, for :func:`tdlib.losses.translate_train_ce`. The ``Trainer`` brings multi-GPU launch
(``torchrun`` / ``accelerate launch``), mixed precision, checkpoints and logging.

What this leaves out: in-batch negatives, gradient caching, and evaluation during training.
"""
from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from tdlib.artifacts import Stage, atomic_write_text
from tdlib.config import Config, default_temperatures
from tdlib.data import open_scores
from tdlib.examples import TrainingExamples, TrainingSet
from tdlib.errors import DataError
from tdlib.losses import kl_distillation, translate_train_ce
from tdlib.student import Student

STUDENT_DIR = "student"
LOG_FILE = "train_log.jsonl"
logger = logging.getLogger(__name__)


class Collator:
    """Tokenise a list of examples into the tensors :class:`TrainingModule` takes."""

    def __init__(self, student: Student):
        self.student = student

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        q = self.student.tokenize([e["query"] for e in examples], is_query=True)
        d = self.student.tokenize([p for e in examples for p in e["passages"]], is_query=False)
        batch = {
            "q_input_ids": q["input_ids"], "q_attention_mask": q["attention_mask"],
            "d_input_ids": d["input_ids"], "d_attention_mask": d["attention_mask"],
        }
        if examples[0]["teacher"] is not None:
            batch["teacher_scores"] = torch.tensor([e["teacher"] for e in examples], dtype=torch.float32)
        return batch


class TrainingModule(nn.Module):
    """The student plus its loss, in the shape the ``Trainer`` expects (a dict with ``loss``)."""

    def __init__(self, student: Student, method: str, student_temperature: float, teacher_temperature: float):
        super().__init__()
        self.student, self.method = student, method
        self.student_temperature, self.teacher_temperature = student_temperature, teacher_temperature

    def forward(self, q_input_ids, q_attention_mask, d_input_ids, d_attention_mask, teacher_scores=None):
        scores = self.student(q_input_ids, q_attention_mask, d_input_ids, d_attention_mask)  # (queries, n)
        if self.method == "distill":
            loss = kl_distillation(scores, teacher_scores, student_temperature=self.student_temperature,
                                   teacher_temperature=self.teacher_temperature)
        else:
            loss = translate_train_ce(scores / self.student_temperature, positive_index=0)
        return {"loss": loss, "scores": scores}


def training_arguments(cfg: Config, checkpoint_dir: Path):
    from transformers import TrainingArguments

    t = cfg.train
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_queries,
        gradient_accumulation_steps=t.grad_accumulation,
        learning_rate=t.lr,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_steps,
        # PLAID-X uses a constant rate when there is no warm-up.
        lr_scheduler_type="constant_with_warmup" if t.warmup_steps else "constant",
        optim="adamw_torch",
        fp16=cuda and t.mixed_precision == "fp16",
        bf16=cuda and t.mixed_precision == "bf16",
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=2,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        # The Trainer's own bar prints every log dict; train_student adds a quieter one (log_callback).
        disable_tqdm=True,
        use_cpu=not cuda,
    )


def log_callback(progress: bool = True):
    """A Trainer callback in place of the Trainer's printing: one ``train`` bar, no printed log dicts.

    The Trainer prints ``{'loss': ...}`` at every logging step and ``{'train_runtime': ...}`` at the
    end, from its progress bar or, without one, from ``PrinterCallback``. This callback shows a bar
    with the last loss on it (``progress=True``) and hands each log entry to the ``tdlib.train``
    logger at INFO, which ``tdlib.logs.quiet(verbose=True)`` (``--verbose`` on the command line)
    shows; ``train_log.jsonl`` keeps them all.
    """
    from transformers import TrainerCallback

    from tdlib.logs import progress_bar

    class TrainProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            if progress and state.is_world_process_zero:
                self.bar = progress_bar(total=state.max_steps, initial=state.global_step, desc="train", unit="step")

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            logger.info("step %d: %s", state.global_step, {k: v for k, v in logs.items() if k != "total_flos"})
            if self.bar is not None and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4g}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return TrainProgress()


def train_student(
    cfg: Config,
    training: TrainingSet,
    out_dir: str | Path,
    scores_file: str | Path | None = None,
    inputs: Mapping[str, Any] | None = None,
    progress: bool = True,
    callbacks: Sequence[Any] = (),
) -> Path:
    """Fine-tune the student and save it to ``out_dir/student``; resumes from the last checkpoint.

    Returns the student folder. ``train_log.jsonl`` holds the Trainer's log (loss per logging step).
    """
    from tdlib.artifacts import fingerprint

    record_inputs = dict(inputs or {})
    if scores_file is not None:
        record_inputs["scores"] = fingerprint(scores_file)
    record_inputs["queries"] = len(training.queries)
    stage = Stage(out_dir, "train", {"student": cfg.student, "train": cfg.train, "seed": cfg.seed,
                                     "inputs": record_inputs})
    final = stage.path(STUDENT_DIR)
    if stage.is_complete():
        return final
    # transformers' Trainer takes seconds to import (more with Hugging Face datasets installed): only
    # when there is training to do
    from transformers import PrinterCallback, Trainer

    checkpoints = stage.path("checkpoints")
    # the launcher's rank and world size (torchrun, accelerate launch), as the Trainer itself reads them
    args = training_arguments(cfg, checkpoints)
    main_process = args.process_index == 0
    resumable = stage.begin() if main_process else True
    scores = None
    if cfg.train.method == "distill":
        if scores_file is None:
            raise DataError("Translate-Distill needs a teacher scores file (tdist format).")
        scores = open_scores(scores_file, cfg.data.lookup)  # read by query: published score files are large
        missing = [q for q in training.queries if q not in scores]
        if missing:
            raise DataError(f"{scores_file} has no scores for {len(missing)} training queries, e.g. {missing[0]!r}.")
    global_batch = cfg.train.batch_queries * cfg.train.grad_accumulation * args.world_size
    epochs = max(1, math.ceil(cfg.train.max_steps * global_batch / max(1, len(training.queries))))
    examples = TrainingExamples(training, cfg, scores, epochs=epochs)
    student = Student.from_pretrained(cfg.student.model, cfg.student, seed=cfg.seed)
    if cfg.train.freeze_embeddings:
        student.encoder.get_input_embeddings().weight.requires_grad_(False)
    module = TrainingModule(student, cfg.train.method, *default_temperatures(cfg))
    trainer = Trainer(
        model=module,
        args=args,
        train_dataset=examples,
        data_collator=Collator(student),
        callbacks=[*callbacks, log_callback(progress)],
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; log_callback logs them
    last = resume_point(checkpoints, remove=main_process) if resumable and checkpoints.is_dir() else None
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.perf_counter() - t0
    if trainer.is_world_process_zero():
        student.save(final)
        log = list(trainer.state.log_history)
        atomic_write_text(stage.path(LOG_FILE), "".join(json.dumps(e) + "\n" for e in log))
        stage.finish({
            "steps": trainer.state.global_step,
            "seconds": round(seconds, 2),
            "queries_per_second": round(cfg.train.batch_queries * trainer.state.global_step / max(seconds, 1e-9), 2),
            "resumed_from": Path(last).name if last else None,
            "final_loss": next((e["loss"] for e in reversed(log) if "loss" in e), None),
            "trainable_parameters": sum(p.numel() for p in student.parameters() if p.requires_grad),
            # the process's peak so far (on Linux, in MiB): training's when it ran in a fresh process
            "peak_rss_mib": _peak_rss_mib(),
        })
    return final


def _peak_rss_mib() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def softmax_entropies(
    cfg: Config,
    training: TrainingSet,
    teacher_scores: Mapping[str, Mapping[str, float]],
    student: Student | None = None,
    groups: int = 64,
    batch_queries: int = 8,
) -> dict[str, list[float]]:
    """Normalised entropy (entropy / log n) of the teacher's and the student's softmax, per group.

    The groups are the first ``groups`` training examples exactly as training draws them (n passages
    per query, ``train.sampling``), each side at its configured temperature: 0 means one-hot (the
    teacher's argmax: hard labels), 1 a flat distribution that teaches nothing. ``student=None``
    gives the teacher's side only.
    """
    from tdlib.losses import normalised_entropy

    dist = replace(cfg, train=replace(cfg.train, method="distill"))
    examples = TrainingExamples(training, dist, teacher_scores)
    chosen = [examples[i] for i in range(min(groups, len(examples)))]
    t_student, t_teacher = default_temperatures(cfg)
    teacher = torch.tensor([e["teacher"] for e in chosen], dtype=torch.float32)  # (groups, n)
    out = {"teacher": normalised_entropy(teacher, t_teacher).tolist()}
    if student is not None:
        collate, rows = Collator(student), []
        was_training = student.training
        student.eval()
        with torch.inference_mode():
            for start in range(0, len(chosen), batch_queries):
                batch = collate(chosen[start:start + batch_queries])
                batch.pop("teacher_scores")
                rows.append(student(**{k: v.to(student.device) for k, v in batch.items()}).float().cpu())
        student.train(was_training)
        out["student"] = normalised_entropy(torch.cat(rows), t_student).tolist()
    return out


def resume_point(checkpoints: Path, remove: bool = True) -> str | None:
    """The newest complete checkpoint in ``checkpoints``, or None to start over.

    The Trainer writes ``trainer_state.json`` last, so a checkpoint without a readable one was being
    written when the run was stopped: it is skipped (and removed, with ``remove``), saying so in one line.
    """
    found = sorted((int(m.group(1)), p) for p in checkpoints.iterdir()
                   if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name)))
    incomplete = []
    for _, folder in reversed(found):
        try:
            json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            incomplete.append(folder)
            continue
        break
    else:
        folder = None
    if incomplete:
        names = ", ".join(f.name for f in incomplete)
        then = f"resuming from {folder.name}" if folder is not None else "starting over"
        logging.getLogger(__name__).warning("%s: %s %s not completely written (the run was stopped while "
                                            "saving); %s.", checkpoints, names,
                                            "was" if len(incomplete) == 1 else "were", then)
        if remove:
            for f in incomplete:
                shutil.rmtree(f, ignore_errors=True)
    return str(folder) if folder is not None else None


def read_log(out_dir: str | Path) -> list[dict[str, Any]]:
    """The Trainer's log entries that carry a training loss, for plotting curves."""
    p = Path(out_dir) / LOG_FILE
    return [e for e in (json.loads(l) for l in p.read_text(encoding="utf-8").splitlines() if l) if "loss" in e]
