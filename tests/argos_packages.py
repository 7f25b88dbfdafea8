"""Tiny but real Argos Translate packages, built by the tests themselves.

Each is a SentencePiece model trained on a few sentences and a one-layer
CTranslate2 Transformer whose weights are set, not trained, so that it copies
its input piece by piece and swaps the words of a small dictionary. Argos,
SentencePiece and CTranslate2 run for real on it; the output is predictable,
so a test can tell a translation, a pivot and a lost placeholder apart.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import sentencepiece
import spacy
from ctranslate2.specs import transformer_spec

# Sentences that give the vocabulary its letters; anything else is copied too,
# as an unknown piece (Argos asks CTranslate2 to replace unknowns from the source).
CORPUS = [
    "Olin kokki Kiovassa kaksi vuotta.",
    "I worked as a cook in Kyiv for two years.",
    "Я працювала кухарем у Києві два роки.",
    "عملت طباخا في كييف لمدة عامين.",
    "<PERSON_1> <PHONE_NUMBER_2> <EMAIL_ADDRESS_3> <ADDRESS_1>",
]
MAX_POSITIONS = 128


def build_package(
    folder: Path, source: str, target: str, dictionary: dict[str, str]
) -> Path:
    """Write `translate-<source>_<target>.argosmodel` into `folder`; return its path."""
    name = f"translate-{source}_{target}"
    work = folder / f"{name}.build"
    package = work / name
    package.mkdir(parents=True)

    model = io.BytesIO()
    words = sorted({word for pair in dictionary.items() for word in pair})
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter([*CORPUS, " ".join(words)]),
        model_writer=model,
        vocab_size=150,
        hard_vocab_limit=False,
        character_coverage=1.0,
        user_defined_symbols=words,
        minloglevel=2,
    )
    (package / "sentencepiece.model").write_bytes(model.getvalue())
    pieces = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    vocabulary = [pieces.id_to_piece(i) for i in range(pieces.get_piece_size())]

    spec = _copying_transformer(vocabulary, dictionary)
    (package / "model").mkdir()
    spec.save(str(package / "model"))
    spacy.blank("xx").to_disk(package / "spacy")
    metadata = {
        "package_version": "0.0.1",
        "argos_version": "1.11",
        "from_code": source,
        "from_name": source,
        "to_code": target,
        "to_name": target,
        "type": "translate",
    }
    (package / "metadata.json").write_text(json.dumps(metadata))

    archive = folder / f"{name}.argosmodel"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(package.rglob("*")):
            bundle.write(path, path.relative_to(work))
    shutil.rmtree(work)

    return archive


def _copying_transformer(
    vocabulary: list[str], dictionary: dict[str, str]
) -> transformer_spec.TransformerSpec:
    """A Transformer that writes at position t the source piece at position t.

    Pieces and positions are one-hot, each with a negated twin so that every
    vector has mean zero and the same norm: layer norm then only rescales. The
    encoder passes its input through; the decoder's cross-attention looks up the
    source position equal to its own and copies that piece; the projection maps
    a dictionary word to its translation. The source ends with </s>, so the copy
    ends there too.
    """
    size, positions = len(vocabulary), MAX_POSITIONS
    width = 2 * size + 2 * positions
    pieces = np.zeros((size, width), np.float32)
    for i in range(size):
        pieces[i, i], pieces[i, size + i] = 1.0, -1.0
    places = np.zeros((positions, width), np.float32)
    for t in range(positions):
        places[t, 2 * size + t], places[t, 2 * size + positions + t] = 1.0, -1.0
    piece_block = np.zeros((width, width), np.float32)
    piece_block[: 2 * size, : 2 * size] = np.eye(2 * size)
    place_block = np.zeros((width, width), np.float32)
    place_block[2 * size :, 2 * size :] = np.eye(2 * positions)

    index = {piece: i for i, piece in enumerate(vocabulary)}
    projection = pieces.copy()
    for word, translation in dictionary.items():
        projection[index[translation]] = pieces[index[word]]
        if word not in dictionary.values():
            projection[index[word]] = 0.0

    spec = transformer_spec.TransformerSpec.from_config((1, 1), 1)
    for side in (spec.encoder, spec.decoder):
        side.scale_embeddings = False
        side.position_encodings.encodings = places
        _unit_norm(side.layer_norm, width)
    spec.encoder.embeddings[0].weight = pieces
    spec.decoder.embeddings.weight = pieces
    for layer in (spec.encoder.layer[0], spec.decoder.layer[0]):
        _silence(layer, width)
    attention = spec.decoder.layer[0].attention
    _unit_norm(attention.layer_norm, width)
    _linear(attention.linear[0], place_block * 50.0)
    _linear(attention.linear[1], np.concatenate([place_block, piece_block]))
    _linear(attention.linear[2], piece_block * 10.0)
    _linear(spec.decoder.projection, projection)
    spec.config.add_source_eos = True
    spec.register_source_vocabulary(vocabulary)
    spec.register_target_vocabulary(vocabulary)
    spec.validate()

    return spec


def _unit_norm(norm: object, width: int) -> None:
    norm.gamma = np.ones(width, np.float32)  # type: ignore[attr-defined]
    norm.beta = np.zeros(width, np.float32)  # type: ignore[attr-defined]


def _linear(linear: object, weight: np.ndarray) -> None:
    linear.weight = weight  # type: ignore[attr-defined]
    linear.bias = np.zeros(weight.shape[0], np.float32)  # type: ignore[attr-defined]


def _silence(layer: object, width: int) -> None:
    """Make a layer's self-attention and feed-forward add nothing."""
    attention, ffn = layer.self_attention, layer.ffn  # type: ignore[attr-defined]
    _unit_norm(attention.layer_norm, width)
    _linear(attention.linear[0], np.zeros((3 * width, width), np.float32))
    _linear(attention.linear[1], np.zeros((width, width), np.float32))
    _unit_norm(ffn.layer_norm, width)
    _linear(ffn.linear_0, np.zeros((8, width), np.float32))
    _linear(ffn.linear_1, np.zeros((width, 8), np.float32))
