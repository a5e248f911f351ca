"""A synthetic data set that behaves like CLIP ViT-B/32 embeddings of CelebA.

Each embedding is the L2-normalised sum of

- a shared "face" axis `m` (scaled so different people have cosine ~cone_cosine:
  CLIP face embeddings sit in a narrow cone and are far from centred),
- an identity vector shared by all images of a person,
- a per-image vector (pose, lighting, background),
- for each attribute j, `s_j * (y_j - rate_j) * u_j` plus a per-image
  ambiguity `tau * eta * u_j` along the same direction.

The `u_j` are orthonormal and orthogonal to the identity/image noise, so the
Bayes accuracy of a linear probe for attribute j is set by its separation
`s_j / tau` and its rate. The separations below were solved for CelebA's
rates and the linear-probe accuracies CLIP reaches on CelebA.

Attribute sampling follows CelebA's dependencies: Male (per identity) drives
Young, Mustache, Eyeglasses and Smiling; Male is fixed per identity, Young and
Mustache mostly per identity, Smiling and Eyeglasses per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fclf.data.embeddings_io import EmbeddingSplit

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class AttributeModel:
    """P(attr | Male) for male and female, how persistent it is, and its separation."""

    p_male: float
    p_female: float
    level: str  # "identity" (resampled per image with prob `resample`) or "image"
    separation: float  # s_j / tau: Bayes accuracy is set by this and the rate
    resample: float = 0.0


# Rates from CelebA: Male 41.7%; the conditionals below reproduce the marginals
# Smiling 48.2%, Young 77.4%, Eyeglasses 6.5%, Mustache 4.2%.
CELEBA_LIKE: dict[str, AttributeModel] = {
    "Male": AttributeModel(1.0, 0.0, "identity", 4.45),
    "Young": AttributeModel(0.638, 0.8714, "identity", 1.80, resample=0.05),
    "Smiling": AttributeModel(0.398, 0.5422, "image", 2.65),
    "Eyeglasses": AttributeModel(0.123, 0.0235, "image", 3.25),
    "Mustache": AttributeModel(0.096, 0.0030, "identity", 2.30, resample=0.15),
}
P_MALE = 0.417
GENERIC = AttributeModel(0.3, 0.3, "image", 3.0)  # any other CelebA attribute
AMBIGUITY = 0.08  # tau: per-image noise along each attribute direction


def _sample_attribute(
    model: AttributeModel, male_img: np.ndarray, owner: np.ndarray, n_ids: int,
    male_id: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    def draw(male: np.ndarray) -> np.ndarray:
        p = np.where(male == 1, model.p_male, model.p_female)
        return (rng.random(len(male)) < p).astype(np.int8)

    if model.level == "image":
        return draw(male_img)
    per_id = draw(male_id)[owner]
    resampled = rng.random(len(owner)) < model.resample
    fresh = draw(male_img)
    return np.where(resampled, fresh, per_id).astype(np.int8)


def generate(
    attribute_names: list[str] | tuple[str, ...],
    identities_per_split: dict[str, int],
    images_per_identity: int = 10,
    dim: int = 512,
    cone_cosine: float = 0.55,
    same_identity_cosine: float = 0.8,
    attribute_strength: float = 1.0,
    seed: int = 0,
) -> dict[str, EmbeddingSplit]:
    """Generate identity-disjoint train/val/test splits; deterministic in `seed`."""
    if same_identity_cosine <= cone_cosine:
        raise ValueError("same_identity_cosine must exceed cone_cosine")
    names = tuple(attribute_names)
    k = len(names)
    if dim < k + 2:
        raise ValueError(f"dim={dim} is too small for {k} attributes")
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    axis, attr_dirs, rest = basis[:, 0], basis[:, 1 : 1 + k], basis[:, 1 + k :]
    models = [CELEBA_LIKE.get(a, GENERIC) for a in names]
    rates = np.array([P_MALE * m.p_male + (1 - P_MALE) * m.p_female for m in models])
    sep = np.array([m.separation for m in models]) * AMBIGUITY * attribute_strength

    # Energy budget (squared norms before normalising ~ 1): axis^2 = cone,
    # identity^2 = same - cone, image^2 = the rest.
    axis_scale = np.sqrt(cone_cosine)
    id_scale = np.sqrt(same_identity_cosine - cone_cosine)
    img_scale = np.sqrt(max(1.0 - same_identity_cosine, 1e-4))

    splits: dict[str, EmbeddingSplit] = {}
    next_identity = 0
    next_image = 0
    for split in SPLITS:
        n_ids = identities_per_split[split]
        counts = 1 + rng.poisson(max(images_per_identity - 1, 0), size=n_ids)
        owner = np.repeat(np.arange(n_ids), counts)
        n = len(owner)
        male_id = (rng.random(n_ids) < P_MALE).astype(np.int8)
        male_img = male_id[owner]
        attrs = np.zeros((n, k), np.int8)
        for j, (name, model) in enumerate(zip(names, models, strict=True)):
            attrs[:, j] = male_img if name == "Male" else _sample_attribute(
                model, male_img, owner, n_ids, male_id, rng
            )
        id_vec = _random_unit(rng, n_ids, rest) * id_scale
        img_vec = _random_unit(rng, n, rest) * img_scale
        ambiguity = rng.standard_normal((n, k)) * AMBIGUITY
        coeff = (attrs - rates) * sep + ambiguity
        raw = axis_scale * axis + id_vec[owner] + img_vec + coeff @ attr_dirs.T
        emb = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
        order = rng.permutation(n)
        image_ids = np.array(
            [f"{next_image + i + 1:06d}.jpg" for i in range(n)], dtype=object
        )
        splits[split] = EmbeddingSplit(
            image_ids=image_ids,
            identities=(owner + next_identity).astype(np.int64)[order],
            attributes=attrs[order],
            embeddings=emb[order],
            attribute_names=names,
            metadata={"source": "synthetic", "encoder": "synthetic-celeba-clip", "split": split},
        )
        next_identity += n_ids
        next_image += n
    return splits


def _random_unit(rng: np.random.Generator, n: int, span: np.ndarray) -> np.ndarray:
    """n random unit vectors in the column span of `span` (orthonormal columns)."""
    coords = rng.standard_normal((n, span.shape[1]))
    coords /= np.linalg.norm(coords, axis=1, keepdims=True)
    return coords @ span.T
