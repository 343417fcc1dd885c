"""VAELM model configuration: the sizes and switches of a Bowman-style recurrent (LSTM or GRU) VAE language model."""

from collections.abc import Mapping
from typing import Any

from transformers import PreTrainedConfig

# The allowed values of the fields that take a name (their one home).
CELL_TYPES = ("lstm", "gru")
SEGMENTATIONS = ("whitespace", "jieba", "char", "words")


class VAELMConfig(PreTrainedConfig):
    r"""
    Configuration of a [`VAELMModel`]: a recurrent encoder that maps a sentence to a diagonal Gaussian posterior
    q(z|x), and a recurrent decoder whose initial state is computed from z (Bowman et al. 2016, "Generating Sentences
    from a Continuous Space").

    Args:
        vocab_size (`int`, *optional*, defaults to 10000):
            Number of word types, special tokens included. Must equal `len(tokenizer)`.
        embedding_size (`int`, *optional*, defaults to 350):
            Size of the word embeddings (the original `--embedding_size`).
        hidden_size (`int`, *optional*, defaults to 200):
            Size of the LSTM states of the encoder and the decoder (the original `--num_units`).
        latent_size (`int`, *optional*, defaults to 13):
            Dimension of the latent variable z (the original `--latent_dim`). 0 makes the model a plain recurrent
            language model: no encoder, a zero initial decoder state, KL 0 and an exact NLL.
        num_layers (`int`, *optional*, defaults to 1):
            Number of stacked recurrent layers in the encoder and in the decoder.
        cell_type (`str`, *optional*, defaults to `"lstm"`):
            Recurrent cell of the encoder and the decoder: `"lstm"` (state (h, c)) or `"gru"` (state h).
        bidirectional_encoder (`bool`, *optional*, defaults to `False`):
            Whether the encoder reads the sentence in both directions; the two final states are concatenated.
        word_dropout (`float`, *optional*, defaults to 0.25):
            Probability of replacing a decoder input word by `<unk>` during training (1 - the original
            `--keep_prob`). BOS and padding are never replaced, and nothing is replaced in evaluation mode.
        embedding_dropout (`float`, *optional*, defaults to 0.0):
            Dropout applied to the embeddings of both LSTMs during training.
        output_dropout (`float`, *optional*, defaults to 0.0):
            Dropout applied to the decoder outputs before the vocabulary projection during training.
        locked_dropout (`bool`, *optional*, defaults to `False`):
            Whether `embedding_dropout` and `output_dropout` use one mask per sentence for all its steps (locked or
            variational dropout, Gal & Ghahramani 2016; Merity et al. 2018) instead of a mask per position.
        weight_drop (`float`, *optional*, defaults to 0.0):
            DropConnect probability on the decoder's hidden-to-hidden matrices during training (Merity et al. 2018):
            one mask per forward pass, shared by every step and sentence.
        word_type_dropout (`float`, *optional*, defaults to 0.0):
            Probability of dropping a whole word type from the embedding matrix during training (embedding dropout
            of Gal & Ghahramani 2016 / Merity et al. 2018): every occurrence of a dropped word gets a zero embedding,
            the others are scaled by 1 / (1 - p).
        posterior_bn_gamma (`float`, *optional*, defaults to 0.0):
            BN-VAE (Zhu et al. 2020): the posterior means are batch-normalised with this fixed scale γ and a learnt
            shift, which keeps the expected KL of every dimension ≥ γ²/2. 0 turns it off.
        latent_to_every_step (`bool`, *optional*, defaults to `False`):
            Whether z is also concatenated to the decoder input at every step, not only used for its initial state.
        bow_loss_weight (`float`, *optional*, defaults to 0.0):
            Weight of a bag-of-words loss from z (Zhao et al. 2017): a linear head predicts every scored word of the
            sentence from z, so that the decoder has to read a code that carries the sentence's words. It is added to
            the training loss only, never to the ELBO or the importance-weighted NLL. 0: no head.
        num_softmax_experts (`int`, *optional*, defaults to 1):
            Number of softmaxes mixed in the output head (a mixture of softmaxes, Yang et al. 2018): each expert
            projects the decoder state through its own tanh layer, and a softmax over the experts weighs their
            next-word distributions. 1 is a single softmax.
        tie_word_embeddings (`bool`, *optional*, defaults to `False`):
            Whether the output projection shares its weight with the input embedding. When the hidden size differs
            from the embedding size, a linear layer maps decoder states to the embedding size first.
        max_sentence_length (`int`, *optional*, defaults to 200):
            Longest sentence, in words, that training keeps; decoding lengths live in `generation_config.json`.
        lang (`str`, *optional*, defaults to `"en"`):
            Language of the training text. `"zh"` means text is segmented before tokenization and decoded without
            spaces.
        segmentation (`str`, *optional*, defaults to `"whitespace"`):
            How raw text is cut into the tokenizer's words: `"whitespace"`, `"jieba"` (Chinese words), `"char"`
            (one token per character) or `"words"` (punctuation-aware English words, inside `tokenizer.json`). The
            same segmentation is applied at training and at inference.
        sentence_split (`bool`, *optional*, defaults to `False`):
            The training files were running text cut into sentences by `vaelm.corpora.sentences` (`--sentence_split`);
            evaluation files are cut the same way.
        initializer_range (`float`, *optional*, defaults to 0.1):
            Half-width of the uniform distribution that initialises embeddings and linear layers.
        pad_token_id (`int`, *optional*, defaults to 0):
            Id of `<pad>`.
        unk_token_id (`int`, *optional*, defaults to 1):
            Id of `<unk>`, the word that word dropout substitutes.
        bos_token_id (`int`, *optional*, defaults to 2):
            Id of `<s>`, the first decoder input.
        eos_token_id (`int`, *optional*, defaults to 3):
            Id of `</s>`, the last word the decoder predicts.

    Example:

    ```python
    >>> from vaelm import VAELMConfig, VAELMModel

    >>> config = VAELMConfig(vocab_size=10000, embedding_size=350, hidden_size=200, latent_size=13)
    >>> model = VAELMModel(config)
    ```
    """

    model_type = "vaelm"

    # Fields as in transformers 5 configurations (`GPT2Config`): PreTrainedConfig turns them into keyword-only dataclass
    # fields, and keys it does not know (`transformers_version`, `auto_map`, …) still pass through. Not `@strict`: its
    # errors are not `ValueError`s and do not say what to do; `validate_sizes` checks every value when the object is
    # made and when it is saved.
    vocab_size: int = 10000
    embedding_size: int = 350
    hidden_size: int = 200
    latent_size: int = 13
    num_layers: int = 1
    cell_type: str = "lstm"
    bidirectional_encoder: bool = False
    word_dropout: float = 0.25
    embedding_dropout: float = 0.0
    output_dropout: float = 0.0
    locked_dropout: bool = False
    weight_drop: float = 0.0
    word_type_dropout: float = 0.0
    posterior_bn_gamma: float = 0.0
    latent_to_every_step: bool = False
    bow_loss_weight: float = 0.0
    num_softmax_experts: int = 1
    tie_word_embeddings: bool = False
    max_sentence_length: int = 200
    lang: str = "en"
    segmentation: str = "whitespace"
    sentence_split: bool = False
    initializer_range: float = 0.1
    pad_token_id: int = 0
    unk_token_id: int = 1
    bos_token_id: int = 2
    eos_token_id: int = 3

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_sizes()

    @property
    def has_latent(self) -> bool:
        """Whether the model has a latent variable z (see [`config_has_latent`])."""
        return config_has_latent(self)

    def validate(self) -> None:
        """transformers' checks, then ours; `save_pretrained` runs this, so a value changed after creation is caught
        before it is written to a folder that would not load."""
        super().validate()
        self.validate_sizes()

    def validate_sizes(self) -> None:
        """Raise a `ValueError` naming the field when a size or probability is impossible."""
        sizes = ("vocab_size", "embedding_size", "hidden_size", "latent_size", "num_layers", "num_softmax_experts")
        for name in (*sizes, "max_sentence_length"):
            value = getattr(self, name)
            smallest = 0 if name == "latent_size" else 1  # latent_size 0: a plain language model
            if not isinstance(value, int) or isinstance(value, bool) or value < smallest:
                what = "a non-negative integer (0: no latent variable)" if smallest == 0 else "a positive integer"
                raise ValueError(f"VAELMConfig.{name} must be {what}, got {value!r}.")
        for name in ("word_dropout", "embedding_dropout", "output_dropout", "weight_drop", "word_type_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(
                    f"VAELMConfig.{name} must lie in [0, 1), got {value!r}"
                    + (
                        " (word_dropout = 1 - keep_prob, so keep_prob must lie in (0, 1])."
                        if name == "word_dropout"
                        else "."
                    )
                )
        weight = self.bow_loss_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"VAELMConfig.bow_loss_weight must be >= 0 (0: off), got {weight!r}.")
        if weight > 0 and not self.has_latent:
            raise ValueError("VAELMConfig.bow_loss_weight needs a latent variable (latent_size > 0).")
        gamma = self.posterior_bn_gamma
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or gamma < 0:
            raise ValueError(f"VAELMConfig.posterior_bn_gamma must be >= 0 (0: off), got {gamma!r}.")
        if gamma > 0 and not self.has_latent:
            raise ValueError("VAELMConfig.posterior_bn_gamma needs a latent variable (latent_size > 0).")
        for name, allowed in (("cell_type", CELL_TYPES), ("segmentation", SEGMENTATIONS)):
            if getattr(self, name) not in allowed:
                listed = ", ".join(map(repr, allowed[:-1])) + f" or {allowed[-1]!r}"
                raise ValueError(f"VAELMConfig.{name} must be {listed}, got {getattr(self, name)!r}.")
        special = [self.pad_token_id, self.unk_token_id, self.bos_token_id, self.eos_token_id]
        if any(not isinstance(i, int) or not 0 <= i < self.vocab_size for i in special):
            raise ValueError(f"VAELMConfig special token ids {special} must lie in [0, vocab_size={self.vocab_size}).")


def config_has_latent(config: "VAELMConfig | Mapping[str, Any]") -> bool:
    """
    Whether a model has a latent variable z: `latent_size > 0`. Without one (`latent_size` 0) it is a plain
    recurrent language model: no encoder, no posterior, KL 0 and an exact NLL. The one test of it.

    Args:
        config ([`VAELMConfig`] or `Mapping`): the configuration, or its dict (`config.json`, a training record's).
    """
    size = config.get("latent_size", VAELMConfig.latent_size) if isinstance(config, Mapping) else config.latent_size
    return size > 0


__all__ = ["CELL_TYPES", "SEGMENTATIONS", "VAELMConfig", "config_has_latent"]
