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


@pytest.fixture(scope="session")
def llama_server():
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, serving the embedded GGUF (one per session)."""
    pytest.importorskip("llama_cpp.server.app", reason="llama-cpp-python[server] is not installed: "
                        "pip install 'goalcover_hf[llamacpp]'")
    from servers import LlamaServer

    from goalcover_hf.models import embedded_gguf_path

    server = LlamaServer(str(embedded_gguf_path()), alias="SmolLM2-135M-Instruct-Q4_1", n_ctx=2048,
                         threads=1)  # llama.cpp's spinning threads crawl on a busy machine
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxy(llama_server):
    """A fault-injecting proxy in front of the session's server (fresh for each test)."""
    from servers import FaultProxy

    p = FaultProxy(llama_server.base_url)
    yield p
    p.close()
