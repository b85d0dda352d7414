import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tiny_model import build_tiny_model  # noqa: E402

from goalcover_hf.spec import GoalSpec  # noqa: E402


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """One goalcover cache for the session, so the embedded model is converted at most once."""
    return tmp_path_factory.mktemp("goalcover_cache")


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch, session_cache):
    """Every cache (goalcover's, datasets') goes to temporary folders: tests never touch the user's."""
    import datasets

    monkeypatch.setenv("GOALCOVER_CACHE", str(session_cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets"))
    yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """Path of a tiny random chat model folder, built once per session."""
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture
def spec() -> GoalSpec:
    return GoalSpec(
        goal="A patient-facing assistant that answers medication questions",
        subgoals=[
            {"id": "states_dose", "name": "States a dose", "description": "The answer gives a dose with units.",
             "low": "No dose at all.", "high": "An exact dose with units and frequency."},
            {"id": "warns_side_effects", "name": "Warns about side effects",
             "description": "The answer names at least one side effect or risk."},
        ],
    )
