"""Transformer candidate: fine-tunes a local sequence-classification checkpoint with a plain torch loop.

torch and transformers are imported inside functions, so importing :mod:`pipelines.models` stays fast.
There is no model hub here: ``base`` must be a local directory written by ``save_pretrained``; when it is
absent :meth:`TransformerClassifier.fit` raises :class:`~pipelines.models.CandidateUnavailable` and the caller
skips the candidate. :func:`build_tiny_checkpoint` makes a tiny random BERT for tests and demos.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import string
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.document import Document
from pipelines.models.base import CalibratedClassifier, CandidateUnavailable, ModelLoadError, checked_scores

ESTIMATOR_FILE = "docclass_estimator.json"
_SPACE = re.compile(r"\s+")
_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_checkpoint(
    out_dir: Path, corpus_texts: Sequence[str], seed: int, vocab_size: int = 400
) -> Path:
    """Write a tiny random BERT and a WordPiece tokenizer with a vocabulary from ``corpus_texts``.

    hidden size 32, 2 layers, 2 heads, intermediate size 64: it fine-tunes in seconds on a CPU. It knows no
    language, so it only learns what the fine-tuning data shows (tests, demos, offline machines).

    Args:
        out_dir: target directory (created).
        corpus_texts: texts the tokenizer vocabulary is trained on.
        seed: torch seed of the weight initialisation.
        vocab_size: upper bound of the WordPiece vocabulary (characters always fit, whole words fill the
            rest by frequency).

    Returns:
        ``out_dir``, loadable with ``AutoModelForSequenceClassification.from_pretrained``.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # the vocabulary is counted here rather than by tokenizers' WordPieceTrainer, whose token order varies
    # from run to run: whole words by frequency, then every character alone and as a continuation piece
    counts: Counter[str] = Counter()
    for text in corpus_texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars = sorted({c for word in counts for c in word} | set(string.ascii_lowercase + string.digits))
    vocab: dict[str, int] = {}
    for token in [*_SPECIAL_TOKENS, *chars, *(f"##{c}" for c in chars)]:
        vocab.setdefault(token, len(vocab))
    for word, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        if len(vocab) >= vocab_size:
            break
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    backend.decoder = decoders.WordPiece()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
    )
    config = BertConfig(
        vocab_size=backend.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        pad_token_id=backend.token_to_id("[PAD]"),
        # BERT's 0.02 leaves a model this small on a long loss plateau; 0.1 fine-tunes reliably
        initializer_range=0.1,
    )
    torch.manual_seed(seed)
    with _quiet_transformers():
        BertModel(config).save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return out_dir


def default_num_threads() -> int:
    """Cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, restoring the previous setting afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n or default_num_threads())
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence the expected "newly initialized classifier" notice and the progress bars, then restore."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()


class TransformerClassifier(CalibratedClassifier):
    """Fine-tuned ``AutoModelForSequenceClassification`` over the document text, temperature-calibrated.

    Args:
        base: local checkpoint directory (``config.json`` + weights + tokenizer).
        max_length: tokens per document (and per page when scoring pages).
        epochs: passes over the training data.
        batch_size: documents per optimiser step (and per inference batch x 4).
        learning_rate: AdamW peak learning rate (linear warm-up over 10 % of the steps, then linear decay).
        calibration_folds: at most this many out-of-fold fine-tunes for the temperature; each one costs a full
            fine-tune (< 2 disables calibration).
        num_threads: torch intra-op threads; None = the cores this process may use.
        random_state: seeds torch (head initialisation, dropout, shuffling) and the calibration folds.
    """

    name = "transformer"

    # No defaults: every value comes from train.transformer in params.yaml (pipelines.models.make_candidate).
    def __init__(
        self,
        *,
        base: str,
        max_length: int,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        calibration_folds: int,
        num_threads: int | None,
        random_state: int,
    ) -> None:
        self.base = base
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.calibration_folds = calibration_folds
        self.num_threads = num_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fit

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> TransformerClassifier:
        """Fine-tune on documents ``X`` with labels ``y``; returns self.

        Raises:
            CandidateUnavailable: ``base`` is not a directory with a config.json, or torch / transformers
                cannot be imported.
        """
        base = Path(self.base)
        if not (base / "config.json").is_file():
            where = "does not exist" if not base.exists() else "has no config.json"
            raise CandidateUnavailable(
                f"transformer base checkpoint {base.resolve()} {where}: expected a local directory "
                f"written by save_pretrained (config.json, weights, tokenizer)"
            )
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise CandidateUnavailable(f"transformers cannot be imported: {exc}") from exc
        try:
            self.tokenizer_ = AutoTokenizer.from_pretrained(base)
        except (OSError, ValueError) as exc:
            raise CandidateUnavailable(
                f"transformer base checkpoint {base} has no usable tokenizer: {exc}"
            ) from exc
        return super().fit(X, y)

    def _fit_context(self) -> contextlib.AbstractContextManager[Any]:
        # torch runs on OpenMP: the base class's one-thread BLAS limit would also pin torch to one thread
        return _torch_threads(self.num_threads)

    def _prepare(self, docs: list[Document]) -> list[str]:
        # about 8 characters per token is generous; a cut keeps tokenising huge documents cheap
        max_chars = self.max_length * 8
        return [_SPACE.sub(" ", doc.text[: max_chars * 2]).strip()[:max_chars] for doc in docs]

    def _encode(self, texts: list[str]) -> dict[str, Any]:
        return self.tokenizer_(
            texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )

    def _fit_core(self, features: list[str], y_idx: np.ndarray) -> Any:
        import torch
        from transformers import AutoModelForSequenceClassification

        n_classes = len(self.classes_)
        torch.manual_seed(self.random_state)
        try:
            with _quiet_transformers():
                model = AutoModelForSequenceClassification.from_pretrained(
                    self.base,
                    num_labels=n_classes,
                    id2label={i: str(c) for i, c in enumerate(self.classes_)},
                    label2id={str(c): i for i, c in enumerate(self.classes_)},
                )
        except (OSError, ValueError) as exc:
            raise CandidateUnavailable(
                f"transformer base checkpoint {self.base} cannot be loaded: {exc}"
            ) from exc
        enc = self._encode(features)
        labels = torch.as_tensor(y_idx, dtype=torch.long)
        n = len(features)
        batch = max(1, int(self.batch_size))
        steps = max(1, self.epochs * math.ceil(n / batch))
        warmup = max(1, steps // 10)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=0.01)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
        )
        generator = torch.Generator().manual_seed(self.random_state)
        model.train()
        for _ in range(self.epochs):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                inputs = self._batch(enc, idx)
                loss = model(**inputs, labels=labels[idx]).loss
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
        model.eval()
        return model

    @staticmethod
    def _batch(enc: dict[str, Any], idx: Any) -> dict[str, Any]:
        # trim padding to the longest sequence of this batch
        mask = enc["attention_mask"][idx]
        width = max(1, int(mask.sum(dim=1).max()))
        return {key: value[idx][:, :width] for key, value in enc.items()}

    def _core_scores(self, core: Any, features: list[str]) -> np.ndarray:
        import torch

        if not features:
            return np.zeros((0, len(self.classes_)))
        # sort by length so each inference batch pads little, then restore the order
        order = np.argsort([len(t) for t in features], kind="stable")
        out = np.zeros((len(features), len(self.classes_)))
        step = max(1, int(self.batch_size)) * 4
        with _torch_threads(self.num_threads), torch.inference_mode():
            for start in range(0, len(features), step):
                idx = order[start : start + step]
                enc = self._encode([features[i] for i in idx])
                out[idx] = core(**enc).logits.double().numpy()
        return checked_scores(out, np.arange(out.shape[1]), len(self.classes_))

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, path: Path) -> None:
        """Write the fine-tuned model, its tokenizer and the state (params, classes, temperature)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with _quiet_transformers():
            self.core_.save_pretrained(path)
            self.tokenizer_.save_pretrained(path)
        state = {
            "params": self.get_params(deep=False),
            "classes": [str(c) for c in self.classes_],
            "temperature": self.temperature_,
            "calibration": self.calibration_,
        }
        (path / ESTIMATOR_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, path: Path) -> TransformerClassifier:
        """Load an estimator written by :meth:`save_pretrained`, ready to predict.

        Raises:
            ModelLoadError: missing or unreadable files.
        """
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        state_path = path / ESTIMATOR_FILE
        if not state_path.is_file():
            raise ModelLoadError(f"{path} has no {ESTIMATOR_FILE}: expected a directory from save_pretrained")
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            model = cls(**state["params"])
            model.classes_ = np.asarray(state["classes"])
            model.temperature_ = float(state["temperature"])
            model.calibration_ = str(state["calibration"])
            model.oof_proba_ = None
            with _quiet_transformers():
                model.tokenizer_ = AutoTokenizer.from_pretrained(path)
                model.core_ = AutoModelForSequenceClassification.from_pretrained(path).eval()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                f"unreadable transformer model in {path}: {type(exc).__name__}: {exc}"
            ) from exc
        return model
