"""Upload a saved model directory (weights, config, feature extractor, card) to the Hugging Face Hub."""

from __future__ import annotations

import os

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from hf_add.model_card import save_model_card

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def push_model_dir(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    commit_message: str = "Upload model trained with hf-add",
    token: str | None = None,
    **card_kwargs,
):
    """Push ``model_dir`` to ``repo_id``; returns the ``CommitInfo``.

    Checks first that the directory is loadable by ``pipeline("audio-classification")`` (config,
    weights, ``preprocessor_config.json``), so a broken repo is never created; renders ``README.md``
    from the saved config and ``card_kwargs`` (see ``hf_add.model_card.build_model_card``) if absent.
    Trainer checkpoints and hidden/underscore files are not uploaded.
    """
    model_dir = os.fspath(model_dir)
    missing = [name for name in ("config.json", "preprocessor_config.json") if not _exists(model_dir, name)]
    if not any(_exists(model_dir, name) for name in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES))
    if missing:
        raise FileNotFoundError(
            f"{model_dir} is not a complete model directory: missing {', '.join(missing)}"
        )
    rendered = not _exists(model_dir, "README.md")
    if rendered:
        save_model_card(model_dir, repo_id=repo_id, **card_kwargs)
    try:
        api = HfApi(token=token)
        repo = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        return api.upload_folder(
            repo_id=repo.repo_id,
            folder_path=model_dir,
            commit_message=commit_message,
            repo_type="model",
            ignore_patterns=["checkpoint-*", "_*", ".*"],
        )
    except BaseException as error:
        if rendered:  # a failed push leaves the directory as it was
            os.remove(os.path.join(model_dir, "README.md"))
        if is_network_error(error):
            raise HubUnreachable(
                f"cannot reach the Hub to push {model_dir} to {repo_id}: no network, or offline mode "
                f"(HF_HUB_OFFLINE) is on ({_first_line(error)}). {model_dir} is unchanged: run the same push "
                "again once online"
            ) from error
        if isinstance(error, HfHubHTTPError):
            raise HubRefused(
                f"the Hub refused the push of {model_dir} to {repo_id} ({_first_line(error)}); {model_dir} is "
                "unchanged. Check the repo id and that your token may write to it (hf auth login)"
            ) from error
        raise


class HubUnreachable(ConnectionError):
    """The Hub could not be reached (no network, DNS, timeout, or offline mode)."""


class HubRefused(PermissionError):
    """The Hub answered with an error (no token, no write access, no such namespace)."""


def is_network_error(error: BaseException) -> bool:
    """A failure to reach the Hub at all: offline mode, or a connection error of the HTTP client (whose
    classes are named, not imported, so that any client version is recognised)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    return isinstance(error, (OfflineModeIsEnabled, ConnectionError, TimeoutError)) or bool(
        names & {"TransportError", "NetworkError", "ConnectError", "TimeoutException"}
    )


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _exists(model_dir: str, name: str) -> bool:
    return os.path.isfile(os.path.join(model_dir, name))
