"""The item map drawn from another encoder: the base model or a tuned one (`crossrec finetune`), so the Map
page can switch between the base and the tuned projection (issue 15). The other encoder's vectors and map
are computed on demand, with progress, and stored like the serving one's (vectors per model id, the map per
model id and catalog), so each is computed once."""
from __future__ import annotations

import pandas as pd

from .config import Settings
from .progress import Progress, sub_progress


def encoder_names(settings: Settings) -> list[str]:
    """'base' and every stored tuned encoder, newest first (`crossrec encoders list`)."""
    from .finetune.registry import list_encoders

    return [row["name"] for row in list_encoders(settings)]


def settings_for_encoder(settings: Settings, name: str) -> Settings:
    """`settings` whose encoder is `name` ('base': the packaged model; else a tuned folder beside the db)."""
    from .encoder import DEFAULT_MODEL
    from .finetune.registry import BASE_NAME, encoder_folder

    if name == BASE_NAME:
        return settings.replace({"encoder.model": DEFAULT_MODEL})
    return settings.replace({"encoder.model": str(encoder_folder(settings, name))})


def stored_projection(store, settings: Settings, name: str) -> pd.DataFrame | None:
    """The stored map of encoder `name` for the current catalog, or None when it was not computed yet."""
    from .projection import cached_projection

    from .encoder import Encoder
    model_id = Encoder.from_settings(settings_for_encoder(settings, name)).model_id
    return cached_projection(store, model_id, max_points=settings.dashboard.umap_max_points, seed=settings.seed)


def projection_for_encoder(store, settings: Settings, name: str, items: pd.DataFrame,
                           progress: Progress | None = None) -> pd.DataFrame:
    """The map of encoder `name` (item_id, x, y): encodes the item texts it lacks, then maps them (UMAP),
    storing both; read from the store when done before."""
    from .encoder import Encoder, encode_items, item_embeddings
    from .projection import item_projection

    s = settings_for_encoder(settings, name)
    encoder = Encoder.from_settings(s)
    encode_items(store, encoder, items, progress=sub_progress(progress, 0.0, 0.5), max_chars=s.encoder.max_text_chars)
    emb = item_embeddings(store, encoder.model_id, items, s.encoder.max_text_chars)
    return item_projection(store, emb, items, encoder.model_id, max_points=s.dashboard.umap_max_points, seed=s.seed,
                           progress=sub_progress(progress, 0.5, 1.0))
